//! Which server to talk to and with which token.
//!
//! Precedence (first set, non-empty value wins), matching the Vault CLI so existing scripts work:
//! - address: `--addr`, `SHROUD_ADDR`, `VAULT_ADDR`, then `http://127.0.0.1:8200`;
//! - token: `SHROUD_TOKEN`, `VAULT_TOKEN`, then the file `~/.shroud-token` written by
//!   `shroud login`. Tokens are never taken from the command line (they would show in `ps`
//!   and shell history);
//! - TLS: `--ca-cert`, `SHROUD_CACERT`, `VAULT_CACERT`; `--tls-fingerprint`,
//!   `SHROUD_TLS_FINGERPRINT`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use shroud_client::{CertFingerprint, Client, ClientConfig};
use shroud_core::SecretString;
use zeroize::Zeroizing;

use crate::cli::GlobalArgs;

/// Address used when nothing else is configured (the dev server's default).
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";
/// Name of the token file in the home directory.
pub const TOKEN_FILE_NAME: &str = ".shroud-token";
/// A token file larger than this is not a token file.
const MAX_TOKEN_FILE_BYTES: u64 = 8 * 1024;

/// Where the token came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable (its name).
    Env(&'static str),
    /// The token file.
    File(PathBuf),
    /// No token configured.
    None,
}

/// Everything needed to build a client.
#[derive(Debug)]
pub struct Settings {
    pub addr: String,
    pub token: Option<SecretString>,
    pub token_source: TokenSource,
    pub ca_cert: Option<PathBuf>,
    pub tls_fingerprint: Option<String>,
}

/// The process environment as a map (pure functions below take it as input).
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn non_empty<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The token file path: `$HOME/.shroud-token`.
pub fn token_file_path(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    non_empty(env, "HOME").map(|h| Path::new(h).join(TOKEN_FILE_NAME))
}

/// Resolves the settings from flags and environment. `read_token_file` is called only when
/// no token variable is set, with the token file's path; it returns `Ok(None)` when the file
/// does not exist.
pub fn resolve(
    flags: &GlobalArgs,
    env: &BTreeMap<String, String>,
    read_token_file: impl FnOnce(&Path) -> anyhow::Result<Option<SecretString>>,
) -> anyhow::Result<Settings> {
    let addr = flags
        .addr
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| non_empty(env, "SHROUD_ADDR"))
        .or_else(|| non_empty(env, "VAULT_ADDR"))
        .unwrap_or(DEFAULT_ADDR)
        .to_owned();

    let mut token = None;
    let mut token_source = TokenSource::None;
    for var in ["SHROUD_TOKEN", "VAULT_TOKEN"] {
        if let Some(t) = non_empty(env, var) {
            token = Some(SecretString::from(t));
            token_source = TokenSource::Env(var);
            break;
        }
    }
    if token.is_none() {
        if let Some(path) = token_file_path(env) {
            if let Some(t) = read_token_file(&path)? {
                token = Some(t);
                token_source = TokenSource::File(path);
            }
        }
    }

    let ca_cert = flags
        .ca_cert
        .clone()
        .or_else(|| non_empty(env, "SHROUD_CACERT").map(PathBuf::from))
        .or_else(|| non_empty(env, "VAULT_CACERT").map(PathBuf::from));
    let tls_fingerprint = flags
        .tls_fingerprint
        .clone()
        .or_else(|| non_empty(env, "SHROUD_TLS_FINGERPRINT").map(str::to_owned));

    Ok(Settings {
        addr,
        token,
        token_source,
        ca_cert,
        tls_fingerprint,
    })
}

/// Reads `~/.shroud-token`: missing file is `None`; the content is trimmed.
pub fn read_token_file(path: &Path) -> anyhow::Result<Option<SecretString>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading token file {}", path.display())),
    };
    if let Ok(meta) = file.metadata() {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "{} is readable by other users; run 'chmod 600 {}'",
                path.display(),
                path.display()
            );
        }
    }
    // Capacity reserved up front so the buffer never reallocates (and leaves no copy).
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_TOKEN_FILE_BYTES as usize + 1));
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading token file {}", path.display()))?;
    if buf.len() as u64 > MAX_TOKEN_FILE_BYTES {
        anyhow::bail!("token file {} is too large", path.display());
    }
    let text = std::str::from_utf8(&buf)
        .with_context(|| format!("token file {} is not UTF-8", path.display()))?;
    let t = text.trim();
    Ok((!t.is_empty()).then(|| SecretString::from(t)))
}

/// Builds the client for the resolved settings.
pub fn client(settings: Settings) -> anyhow::Result<Client> {
    let tls_fingerprint = settings
        .tls_fingerprint
        .as_deref()
        .map(str::parse::<CertFingerprint>)
        .transpose()?;
    let client = Client::new(ClientConfig {
        addr: settings.addr,
        token: settings.token,
        ca_cert: settings.ca_cert,
        tls_fingerprint,
    })?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn no_file(_: &Path) -> anyhow::Result<Option<SecretString>> {
        Ok(None)
    }

    #[test]
    fn default_address_when_nothing_is_set() {
        let s = resolve(&GlobalArgs::default(), &env(&[]), no_file).unwrap();
        assert_eq!(s.addr, DEFAULT_ADDR);
        assert!(s.token.is_none());
        assert_eq!(s.token_source, TokenSource::None);
    }

    #[test]
    fn flag_beats_shroud_addr_beats_vault_addr() {
        let e = env(&[("SHROUD_ADDR", "http://s:1"), ("VAULT_ADDR", "http://v:1")]);
        let flags = GlobalArgs {
            addr: Some("http://flag:1".into()),
            ..Default::default()
        };
        assert_eq!(resolve(&flags, &e, no_file).unwrap().addr, "http://flag:1");
        assert_eq!(
            resolve(&GlobalArgs::default(), &e, no_file).unwrap().addr,
            "http://s:1"
        );
        let e = env(&[("SHROUD_ADDR", "  "), ("VAULT_ADDR", "http://v:1")]);
        assert_eq!(
            resolve(&GlobalArgs::default(), &e, no_file).unwrap().addr,
            "http://v:1",
            "an empty SHROUD_ADDR counts as unset"
        );
    }

    #[test]
    fn shroud_token_beats_vault_token_beats_file() {
        let file = |_: &Path| Ok(Some(SecretString::from("from-file")));
        let e = env(&[
            ("SHROUD_TOKEN", "s-tok"),
            ("VAULT_TOKEN", "v-tok"),
            ("HOME", "/h"),
        ]);
        let s = resolve(&GlobalArgs::default(), &e, file).unwrap();
        assert_eq!(s.token.unwrap().expose(), "s-tok");
        assert_eq!(s.token_source, TokenSource::Env("SHROUD_TOKEN"));

        let e = env(&[("VAULT_TOKEN", "v-tok"), ("HOME", "/h")]);
        let s = resolve(&GlobalArgs::default(), &e, file).unwrap();
        assert_eq!(s.token.unwrap().expose(), "v-tok");

        let e = env(&[("HOME", "/h")]);
        let s = resolve(&GlobalArgs::default(), &e, |p: &Path| {
            assert_eq!(p, Path::new("/h/.shroud-token"));
            Ok(Some(SecretString::from("from-file")))
        })
        .unwrap();
        assert_eq!(s.token.unwrap().expose(), "from-file");
        assert_eq!(
            s.token_source,
            TokenSource::File(PathBuf::from("/h/.shroud-token"))
        );
    }

    #[test]
    fn token_file_is_not_read_when_a_variable_is_set() {
        let e = env(&[("SHROUD_TOKEN", "tok"), ("HOME", "/h")]);
        let s = resolve(&GlobalArgs::default(), &e, |_: &Path| {
            panic!("token file must not be read")
        })
        .unwrap();
        assert!(s.token.is_some());
    }

    #[test]
    fn ca_cert_and_fingerprint_precedence() {
        let e = env(&[
            ("SHROUD_CACERT", "/s.pem"),
            ("VAULT_CACERT", "/v.pem"),
            ("SHROUD_TLS_FINGERPRINT", "sha256:00"),
        ]);
        let s = resolve(&GlobalArgs::default(), &e, no_file).unwrap();
        assert_eq!(s.ca_cert, Some(PathBuf::from("/s.pem")));
        assert_eq!(s.tls_fingerprint.as_deref(), Some("sha256:00"));
        let e = env(&[("VAULT_CACERT", "/v.pem")]);
        let s = resolve(&GlobalArgs::default(), &e, no_file).unwrap();
        assert_eq!(s.ca_cert, Some(PathBuf::from("/v.pem")));
        let flags = GlobalArgs {
            ca_cert: Some(PathBuf::from("/flag.pem")),
            ..Default::default()
        };
        let s = resolve(&flags, &e, no_file).unwrap();
        assert_eq!(s.ca_cert, Some(PathBuf::from("/flag.pem")));
    }

    #[test]
    fn token_file_is_trimmed_and_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TOKEN_FILE_NAME);
        assert!(read_token_file(&p).unwrap().is_none());
        shroud_core::secret_file::write_atomic(&p, b"hvs.abc\n", 0o600).unwrap();
        assert_eq!(read_token_file(&p).unwrap().unwrap().expose(), "hvs.abc");
        shroud_core::secret_file::write_atomic(&p, b" \n", 0o600).unwrap();
        assert!(read_token_file(&p).unwrap().is_none());
    }
}
