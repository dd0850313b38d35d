//! `shroud transit`: named encryption keys and encryption as a service (Vault's transit
//! engine, mounted at `transit/` unless `--mount`).
//!
//! Plaintext is read from a file or stdin and written to stdout byte for byte; it is never an
//! argument. Ciphertext (`vault:v<N>:...`) is not secret and travels as text lines, one per
//! line for `rewrap`, which sends them in batches.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use shroud_client::{KeyConfig, KeyCreateRequest, Transit, TransitKey};
use shroud_core::duration;

use super::{check_mount, check_name, parse_duration, print_json, print_text, Ctx};
use crate::cli::Format;
use crate::report::{hinted, usage};
use crate::{input, table};

/// Largest plaintext `encrypt` accepts. Its base64 form (4/3 larger) plus the JSON envelope
/// stays below the server's 32 MiB request limit.
pub const MAX_PLAINTEXT_BYTES: usize = 16 * 1024 * 1024;
/// Largest ciphertext accepted (the ciphertext of a maximal plaintext, with room to spare).
pub const MAX_CIPHERTEXT_BYTES: usize = 24 * 1024 * 1024;
/// Default number of ciphertexts per `rewrap` request.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Ciphertext bytes per `rewrap` request before a batch is cut short of its item count,
/// keeping the request body far below the server's 32 MiB limit.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most per-line failures quoted in a `rewrap` error.
const MAX_REPORTED_FAILURES: usize = 5;
/// Longest `--context` accepted (base64 text).
const MAX_CONTEXT_BYTES: usize = 4096;
/// Vault refuses automatic rotation periods below one hour (other than 0 = off).
const MIN_AUTO_ROTATE_SECS: u64 = 3600;

const KEY_NAME_HINT: &str = "key names are single words like 'orders' or 'app-db'";

/// Flags of the `transit` group; `--mount` is accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct TransitArgs {
    /// Mount path of the transit engine
    #[arg(long, global = true, default_value = "transit", value_name = "MOUNT")]
    pub mount: String,
    #[command(subcommand)]
    pub command: TransitCommand,
}

#[derive(Debug, Subcommand)]
pub enum TransitCommand {
    /// Create, list, rotate and configure encryption keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Encrypt bytes from a file or stdin; print the ciphertext
    #[command(long_about = "\
Encrypt the bytes of FILE, or of standard input when FILE is '-' or absent, with the key NAME \
and print the ciphertext (vault:v<N>:...) on one line. Any bytes work, binary included, up to \
16 MiB. If the key does not exist and the token may create it, the server creates an \
aes256-gcm96 key (Vault's behaviour). Derived keys need --context.

Examples:
  printf 'card 4111' | shroud transit encrypt orders > card.enc
  shroud transit encrypt backups ./dump.bin --context $(printf 'tenant-7' | base64)")]
    Encrypt(EncryptArgs),
    /// Decrypt a ciphertext from a file or stdin; write the plaintext to stdout
    #[command(long_about = "\
Decrypt one ciphertext read from FILE, or from standard input when FILE is '-' or absent, \
with the key NAME, and write the exact plaintext bytes to standard output (no newline added).

Examples:
  shroud transit decrypt orders card.enc
  shroud transit decrypt backups --context $(printf 'tenant-7' | base64) < dump.enc > dump.bin")]
    Decrypt(DecryptArgs),
    /// Re-encrypt ciphertexts under the key's latest version
    #[command(long_about = "\
Re-encrypt ciphertexts under the latest version of the key NAME, without the plaintext leaving \
the server: one ciphertext per line in (FILE, or standard input when '-' or absent), one per \
line out, in the same order. Blank lines are passed through. Lines are sent in batches \
(--batch-size, default 1000); with more than one batch, progress goes to standard error. On a \
failure the command stops, names the failing lines and exits 1; batches before it have been \
written.

Examples:
  shroud transit keys rotate orders
  shroud transit rewrap orders cards.enc > cards.new && mv cards.new cards.enc")]
    Rewrap(RewrapArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a named encryption key
    #[command(long_about = "\
Create the key NAME. Types: aes256-gcm96 (default) and chacha20-poly1305 encrypt; ed25519 \
signs. With --derived, a key is derived per context (every encrypt and decrypt then needs \
--context).

Examples:
  shroud transit keys create orders
  shroud transit keys create tenants --type chacha20-poly1305 --derived")]
    Create(KeyCreateArgs),
    /// List keys
    #[command(
        visible_alias = "list",
        long_about = "\
List the names of the keys of the transit mount.

Examples:
  shroud transit keys ls
  shroud transit keys ls --format json"
    )]
    Ls(LsArgs),
    /// Show a key's settings and versions (never key material)
    #[command(long_about = "\
Show the settings of the key NAME: type, versions and their creation times, the minimum \
decryption and encryption versions, whether it can be deleted, automatic rotation.

Example:
  shroud transit keys read orders --format json")]
    Read(KeyReadArgs),
    /// Add a new key version used for encryption from now on
    #[command(long_about = "\
Rotate the key NAME: add a version that encrypts from now on. Older versions keep decrypting \
(down to min_decryption_version); re-encrypt old ciphertext with 'transit rewrap'.

Example:
  shroud transit keys rotate orders")]
    Rotate(KeyNameArgs),
    /// Change a key's settings
    #[command(long_about = "\
Change settings of the key NAME. --min-decryption-version refuses ciphertext of older versions \
(after a rewrap); --min-encryption-version must be 0 (the latest) or at least the minimum \
decryption version; --deletion-allowed true is needed before 'keys rm'; --auto-rotate-period \
is 0 (off) or at least 1h.

Examples:
  shroud transit keys config orders --min-decryption-version 2
  shroud transit keys config orders --deletion-allowed true
  shroud transit keys config orders --auto-rotate-period 720h")]
    Config(KeyConfigArgs),
    /// Delete a key (ciphertext under it becomes undecryptable)
    #[command(
        visible_alias = "remove",
        long_about = "\
Delete the key NAME with all its versions. Everything encrypted with it can no longer be \
decrypted. The key must first be configured with --deletion-allowed true.

Example:
  shroud transit keys config orders --deletion-allowed true
  shroud transit keys rm orders"
    )]
    Rm(KeyNameArgs),
}

/// Key types offered by `keys create` (the server may support more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// AES-256-GCM with 96-bit nonces (Vault's default)
    #[value(name = "aes256-gcm96")]
    Aes256Gcm96,
    /// ChaCha20-Poly1305
    #[value(name = "chacha20-poly1305")]
    Chacha20Poly1305,
    /// Ed25519 signing key
    #[value(name = "ed25519")]
    Ed25519,
}

impl KeyType {
    /// The type as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::Chacha20Poly1305 => "chacha20-poly1305",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// Key name
    pub name: String,
    /// Key type
    #[arg(long = "type", value_enum, default_value_t = KeyType::Aes256Gcm96)]
    pub key_type: KeyType,
    /// Derive a key per context (encrypt and decrypt then need --context)
    #[arg(long)]
    pub derived: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct KeyReadArgs {
    /// Key name
    pub name: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct KeyNameArgs {
    /// Key name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct KeyConfigArgs {
    /// Key name
    pub name: String,
    /// Oldest key version allowed to decrypt
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub min_decryption_version: Option<u64>,
    /// Oldest key version allowed to encrypt (0 = the latest)
    #[arg(long, value_name = "N")]
    pub min_encryption_version: Option<u64>,
    /// Whether the key may be deleted
    #[arg(long, value_name = "BOOL")]
    pub deletion_allowed: Option<bool>,
    /// Rotate automatically with this period (0 = off, else at least 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub auto_rotate_period: Option<String>,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Key name
    pub name: String,
    /// File holding the plaintext; '-' or absent for stdin
    pub file: Option<PathBuf>,
    /// Key-derivation context, base64 (required for derived keys)
    #[arg(long, value_name = "B64", value_parser = parse_context)]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Key name
    pub name: String,
    /// File holding the ciphertext; '-' or absent for stdin
    pub file: Option<PathBuf>,
    /// Key-derivation context, base64 (required for derived keys)
    #[arg(long, value_name = "B64", value_parser = parse_context)]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// Key name
    pub name: String,
    /// File with one ciphertext per line; '-' or absent for stdin
    pub file: Option<PathBuf>,
    /// Key-derivation context, base64 (required for derived keys)
    #[arg(long, value_name = "B64", value_parser = parse_context)]
    pub context: Option<String>,
    /// Ciphertexts per request
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE,
          value_parser = parse_batch_size)]
    pub batch_size: usize,
}

/// A context is sent as given, but must be base64 (the server would reject it anyway, with a
/// less helpful message).
fn parse_context(s: &str) -> Result<String, String> {
    if s.len() > MAX_CONTEXT_BYTES {
        return Err(format!(
            "the context is longer than {MAX_CONTEXT_BYTES} bytes"
        ));
    }
    STANDARD
        .decode(s)
        .map(|_| s.to_owned())
        .map_err(|_| "the context must be base64, e.g. $(printf 'tenant-7' | base64)".to_owned())
}

fn parse_batch_size(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| "expected a number".to_owned())?;
    if n == 0 || n > shroud_client::transit::MAX_BATCH_ITEMS {
        return Err(format!(
            "the batch size must be between 1 and {}",
            shroud_client::transit::MAX_BATCH_ITEMS
        ));
    }
    Ok(n)
}

pub async fn run(args: TransitArgs, ctx: Ctx) -> anyhow::Result<ExitCode> {
    check_mount(&args.mount)?;
    let transit = ctx.client.transit(&args.mount);
    match args.command {
        TransitCommand::Keys(cmd) => keys(&transit, cmd).await?,
        TransitCommand::Encrypt(a) => encrypt(&transit, a).await?,
        TransitCommand::Decrypt(a) => decrypt(&transit, a).await?,
        TransitCommand::Rewrap(a) => rewrap(&transit, a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn check_key_name(name: &str) -> anyhow::Result<()> {
    check_name("key", name, KEY_NAME_HINT)
}

fn key_not_found(name: &str) -> anyhow::Error {
    hinted(
        format!("key {name} not found"),
        "list keys with 'shroud transit keys ls', or create it with 'shroud transit keys create'",
    )
}

async fn keys(t: &Transit<'_>, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create(a) => {
            check_key_name(&a.name)?;
            let req = KeyCreateRequest {
                key_type: Some(a.key_type.as_str().to_owned()),
                derived: a.derived,
                ..Default::default()
            };
            t.create_key(&a.name, &req)
                .await
                .with_context(|| format!("creating key {}", a.name))?;
            eprintln!("key {} created ({})", a.name, a.key_type.as_str());
        }
        KeysCommand::Ls(a) => {
            let mut names = t.list_keys().await.context("listing keys")?;
            names.sort();
            match a.format {
                Format::Json => print_json(&names)?,
                Format::Table => print_text(
                    &names
                        .iter()
                        .map(|n| format!("{}\n", table::printable(n)))
                        .collect::<String>(),
                )?,
            }
        }
        KeysCommand::Read(a) => {
            check_key_name(&a.name)?;
            let key = t
                .read_key(&a.name)
                .await
                .with_context(|| format!("reading key {}", a.name))?
                .ok_or_else(|| key_not_found(&a.name))?;
            match a.format {
                Format::Json => print_json(&key)?,
                Format::Table => print_text(&table::render_pairs(&key_pairs(&key)))?,
            }
        }
        KeysCommand::Rotate(a) => {
            check_key_name(&a.name)?;
            let key = t
                .rotate_key(&a.name)
                .await
                .with_context(|| format!("rotating key {}", a.name))?;
            eprintln!(
                "key {} rotated: version {} encrypts from now on",
                a.name, key.latest_version
            );
        }
        KeysCommand::Config(a) => {
            check_key_name(&a.name)?;
            let config = key_config(&a)?;
            t.configure_key(&a.name, &config)
                .await
                .with_context(|| format!("configuring key {}", a.name))?;
            eprintln!("key {} configured", a.name);
        }
        KeysCommand::Rm(a) => {
            check_key_name(&a.name)?;
            t.delete_key(&a.name).await.map_err(|e| {
                let denied =
                    e.status() == Some(400) && e.to_string().contains("deletion is not allowed");
                if denied {
                    hinted(
                        format!("key {} may not be deleted", a.name),
                        format!(
                            "allow it first with 'shroud transit keys config {} \
                             --deletion-allowed true'",
                            a.name
                        ),
                    )
                } else {
                    anyhow::Error::new(e).context(format!("deleting key {}", a.name))
                }
            })?;
            eprintln!("key {} deleted", a.name);
        }
    }
    Ok(())
}

/// Builds the config request, rejecting what Vault would reject with a clearer message.
fn key_config(a: &KeyConfigArgs) -> anyhow::Result<KeyConfig> {
    let config = KeyConfig {
        min_decryption_version: a.min_decryption_version,
        min_encryption_version: a.min_encryption_version,
        deletion_allowed: a.deletion_allowed,
        auto_rotate_period: a.auto_rotate_period.clone(),
    };
    if config.is_empty() {
        return Err(usage(
            "nothing to change",
            Some(
                "give at least one of --min-decryption-version, --min-encryption-version, \
                 --deletion-allowed, --auto-rotate-period",
            ),
        ));
    }
    if let (Some(dec), Some(enc)) = (a.min_decryption_version, a.min_encryption_version) {
        if enc != 0 && enc < dec {
            return Err(usage(
                "--min-encryption-version must be 0 or at least --min-decryption-version",
                None,
            ));
        }
    }
    if let Some(p) = &a.auto_rotate_period {
        let secs = duration::parse(p).map(|d| d.as_secs()).unwrap_or(0);
        if secs != 0 && secs < MIN_AUTO_ROTATE_SECS {
            return Err(usage(
                "--auto-rotate-period must be 0 (off) or at least 1h",
                None,
            ));
        }
    }
    Ok(config)
}

fn key_pairs(k: &TransitKey) -> Vec<(&'static str, String)> {
    let mut pairs = vec![
        ("name", k.name.clone()),
        ("type", k.key_type.clone()),
        ("latest_version", k.latest_version.to_string()),
        ("min_available_version", k.min_available_version.to_string()),
        (
            "min_decryption_version",
            k.min_decryption_version.to_string(),
        ),
        (
            "min_encryption_version",
            k.min_encryption_version.to_string(),
        ),
        ("deletion_allowed", k.deletion_allowed.to_string()),
        ("derived", k.derived.to_string()),
        ("exportable", k.exportable.to_string()),
        (
            "auto_rotate_period",
            if k.auto_rotate_period == 0 {
                "off".to_owned()
            } else {
                duration::go_string(k.auto_rotate_period)
            },
        ),
        ("supports_encryption", k.supports_encryption.to_string()),
        ("supports_decryption", k.supports_decryption.to_string()),
        ("supports_signing", k.supports_signing.to_string()),
    ];
    let versions = k
        .keys
        .iter()
        .map(|(n, v)| {
            let created = match (&v.creation_time, v.created_unix) {
                (Some(t), _) => table::short_time(t),
                (None, Some(unix)) => unix_time(unix),
                (None, None) => "-".to_owned(),
            };
            format!("v{n} ({created})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    pairs.push(("versions", versions));
    pairs
}

/// RFC 3339 (UTC, seconds) of a Unix time; the number itself if out of range.
fn unix_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

async fn encrypt(t: &Transit<'_>, a: EncryptArgs) -> anyhow::Result<()> {
    check_key_name(&a.name)?;
    let plaintext = input::read_content(a.file.as_deref(), MAX_PLAINTEXT_BYTES)?;
    let ct = t
        .encrypt(&a.name, &plaintext, a.context.as_deref())
        .await
        .with_context(|| format!("encrypting with key {}", a.name))?;
    print_text(&format!("{}\n", ct.ciphertext))
}

async fn decrypt(t: &Transit<'_>, a: DecryptArgs) -> anyhow::Result<()> {
    check_key_name(&a.name)?;
    let ciphertext = read_one_ciphertext(a.file.as_deref())?;
    let plaintext = t
        .decrypt(&a.name, &ciphertext, a.context.as_deref())
        .await
        .with_context(|| format!("decrypting with key {}", a.name))?;
    let mut out = std::io::stdout().lock();
    out.write_all(plaintext.expose())
        .and_then(|()| out.flush())
        .context("writing to standard output")
}

/// One ciphertext from a file or stdin: surrounding whitespace ignored, nothing else allowed.
fn read_one_ciphertext(file: Option<&Path>) -> anyhow::Result<String> {
    let bytes = input::read_content(file, MAX_CIPHERTEXT_BYTES)?;
    let ct = std::str::from_utf8(bytes.expose())
        .context("the ciphertext is not text")?
        .trim();
    if ct.is_empty() {
        bail!("no ciphertext was given");
    }
    if ct.contains(char::is_whitespace) {
        return Err(hinted(
            "expected one ciphertext, found several words or lines",
            "decrypt one ciphertext at a time; 'shroud transit rewrap' handles many",
        ));
    }
    Ok(ct.to_owned())
}

/// One input line of `rewrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// A blank line, passed through.
    Blank,
    /// A ciphertext and its 1-based line number.
    Ciphertext(String, u64),
}

/// Reads the lines of the next batch: up to `max_items` ciphertexts, cut short once they
/// total `MAX_BATCH_BYTES` (a single larger line still makes a batch of one). Empty at EOF.
fn read_batch(
    r: &mut impl BufRead,
    max_items: usize,
    line_no: &mut u64,
) -> anyhow::Result<Vec<Line>> {
    let mut out = Vec::new();
    let mut items = 0;
    let mut bytes = 0;
    while items < max_items && bytes < MAX_BATCH_BYTES {
        let mut buf = Vec::new();
        let n = std::io::Read::take(&mut *r, MAX_CIPHERTEXT_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .context("reading the ciphertexts")?;
        if n == 0 {
            break;
        }
        *line_no += 1;
        if buf.len() > MAX_CIPHERTEXT_BYTES {
            bail!("line {line_no} is longer than {MAX_CIPHERTEXT_BYTES} bytes");
        }
        let text = std::str::from_utf8(&buf)
            .with_context(|| format!("line {line_no} is not text"))?
            .trim();
        if text.is_empty() {
            out.push(Line::Blank);
            continue;
        }
        if text.contains(char::is_whitespace) {
            bail!("line {line_no} holds more than one word; expected one ciphertext per line");
        }
        items += 1;
        bytes += text.len();
        out.push(Line::Ciphertext(text.to_owned(), *line_no));
    }
    Ok(out)
}

/// Rewraps one batch and returns its output text (one line per input line).
async fn rewrap_batch(
    t: &Transit<'_>,
    name: &str,
    context: Option<&str>,
    batch: &[Line],
) -> anyhow::Result<(String, usize)> {
    let cts: Vec<(&str, u64)> = batch
        .iter()
        .filter_map(|l| match l {
            Line::Ciphertext(c, n) => Some((c.as_str(), *n)),
            Line::Blank => None,
        })
        .collect();
    let results: Vec<Result<String, String>> = match cts.as_slice() {
        [] => Vec::new(),
        [(one, n)] => vec![Ok(t
            .rewrap(name, one, context)
            .await
            .with_context(|| format!("rewrapping line {n} with key {name}"))?
            .ciphertext)],
        many => {
            let input: Vec<&str> = many.iter().map(|(c, _)| *c).collect();
            t.rewrap_batch(name, &input, context)
                .await
                .with_context(|| format!("rewrapping with key {name}"))?
                .into_iter()
                .map(|r| r.map(|c| c.ciphertext))
                .collect()
        }
    };
    let failures: Vec<String> = results
        .iter()
        .zip(&cts)
        .filter_map(|(r, (_, n))| r.as_ref().err().map(|e| format!("line {n}: {e}")))
        .collect();
    if !failures.is_empty() {
        let shown = failures
            .iter()
            .take(MAX_REPORTED_FAILURES)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let more = failures.len().saturating_sub(MAX_REPORTED_FAILURES);
        let suffix = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        bail!(
            "{} of {} ciphertexts could not be rewrapped: {shown}{suffix}",
            failures.len(),
            cts.len()
        );
    }
    let mut rewrapped = results.into_iter().flatten();
    let mut text = String::new();
    for line in batch {
        if let Line::Ciphertext(..) = line {
            // Invariant: `results` has one entry per ciphertext, all Ok (checked above).
            text.push_str(&rewrapped.next().unwrap_or_default());
        }
        text.push('\n');
    }
    Ok((text, cts.len()))
}

async fn rewrap(t: &Transit<'_>, a: RewrapArgs) -> anyhow::Result<()> {
    check_key_name(&a.name)?;
    let mut reader: Box<dyn BufRead> = match a.file.as_deref() {
        Some(p) if p != Path::new("-") => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        _ => {
            if input::stdin_is_terminal() {
                eprintln!("reading ciphertexts from the terminal, one per line; end with Ctrl-D");
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let mut line_no = 0u64;
    let mut done = 0usize;
    let mut batches = 0usize;
    let mut next = read_batch(&mut reader, a.batch_size, &mut line_no)?;
    while !next.is_empty() {
        let current = std::mem::take(&mut next);
        let first_line = line_no + 1 - current.len() as u64;
        let (text, count) = rewrap_batch(t, &a.name, a.context.as_deref(), &current)
            .await
            .map_err(|e| {
                if done > 0 {
                    e.context(format!(
                        "stopped at the batch starting on line {first_line}; the {done} \
                         ciphertexts before it were written"
                    ))
                } else {
                    e
                }
            })?;
        print_text(&text)?;
        done += count;
        batches += 1;
        next = read_batch(&mut reader, a.batch_size, &mut line_no)?;
        if batches > 1 || !next.is_empty() {
            eprintln!("rewrapped {done} ciphertexts");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn transit(args: &[&str]) -> Result<TransitArgs, clap::Error> {
        match Cli::try_parse_from(["shroud", "transit"].iter().chain(args))?.command {
            Command::Transit(t) => Ok(t),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_create_parses_type_and_derived() {
        let t = transit(&[
            "keys",
            "create",
            "k",
            "--type",
            "chacha20-poly1305",
            "--derived",
        ])
        .unwrap();
        assert_eq!(t.mount, "transit");
        let TransitCommand::Keys(KeysCommand::Create(a)) = t.command else {
            panic!()
        };
        assert_eq!(a.name, "k");
        assert_eq!(a.key_type, KeyType::Chacha20Poly1305);
        assert!(a.derived);
        let t = transit(&["keys", "create", "k"]).unwrap();
        let TransitCommand::Keys(KeysCommand::Create(a)) = t.command else {
            panic!()
        };
        assert_eq!(a.key_type, KeyType::Aes256Gcm96);
        assert!(!a.derived);
        assert!(transit(&["keys", "create", "k", "--type", "rsa-1024"]).is_err());
        for ty in ["aes256-gcm96", "chacha20-poly1305", "ed25519"] {
            assert!(
                transit(&["keys", "create", "k", "--type", ty]).is_ok(),
                "{ty}"
            );
        }
    }

    #[test]
    fn mount_is_accepted_before_and_after_the_subcommand() {
        let t = transit(&["--mount", "kms", "keys", "ls"]).unwrap();
        assert_eq!(t.mount, "kms");
        let t = transit(&["keys", "ls", "--mount", "kms2", "--format", "json"]).unwrap();
        assert_eq!(t.mount, "kms2");
        let t = transit(&["encrypt", "k", "--mount", "kms3"]).unwrap();
        assert_eq!(t.mount, "kms3");
    }

    #[test]
    fn keys_read_rotate_rm_and_list_alias_parse() {
        let t = transit(&["keys", "read", "k", "--format", "json"]).unwrap();
        let TransitCommand::Keys(KeysCommand::Read(a)) = t.command else {
            panic!()
        };
        assert_eq!((a.name.as_str(), a.format), ("k", Format::Json));
        assert!(matches!(
            transit(&["keys", "rotate", "k"]).unwrap().command,
            TransitCommand::Keys(KeysCommand::Rotate(_))
        ));
        assert!(matches!(
            transit(&["keys", "rm", "k"]).unwrap().command,
            TransitCommand::Keys(KeysCommand::Rm(_))
        ));
        assert!(matches!(
            transit(&["keys", "list"]).unwrap().command,
            TransitCommand::Keys(KeysCommand::Ls(_))
        ));
        assert!(transit(&["keys", "read"]).is_err());
    }

    #[test]
    fn keys_config_parses_every_option() {
        let t = transit(&[
            "keys",
            "config",
            "k",
            "--min-decryption-version",
            "2",
            "--min-encryption-version",
            "3",
            "--deletion-allowed",
            "true",
            "--auto-rotate-period",
            "720h",
        ])
        .unwrap();
        let TransitCommand::Keys(KeysCommand::Config(a)) = t.command else {
            panic!()
        };
        assert_eq!(a.min_decryption_version, Some(2));
        assert_eq!(a.min_encryption_version, Some(3));
        assert_eq!(a.deletion_allowed, Some(true));
        assert_eq!(a.auto_rotate_period.as_deref(), Some("720h"));
        let c = key_config(&a).unwrap();
        assert_eq!(c.min_decryption_version, Some(2));
        assert!(transit(&["keys", "config", "k", "--min-decryption-version", "0"]).is_err());
        assert!(transit(&["keys", "config", "k", "--deletion-allowed", "yes"]).is_err());
        assert!(transit(&["keys", "config", "k", "--auto-rotate-period", "1 day"]).is_err());
    }

    #[test]
    fn key_config_rejects_what_vault_rejects() {
        let args = |dec, enc, period: Option<&str>| KeyConfigArgs {
            name: "k".into(),
            min_decryption_version: dec,
            min_encryption_version: enc,
            deletion_allowed: None,
            auto_rotate_period: period.map(str::to_owned),
        };
        let (_, code) = crate::report::render(&key_config(&args(None, None, None)).unwrap_err());
        assert_eq!(code, crate::report::EXIT_USAGE, "nothing to change");
        assert!(key_config(&args(Some(3), Some(2), None)).is_err());
        assert!(key_config(&args(Some(3), Some(0), None)).is_ok());
        assert!(key_config(&args(Some(3), Some(3), None)).is_ok());
        assert!(key_config(&args(None, None, Some("30m"))).is_err());
        assert!(key_config(&args(None, None, Some("0"))).is_ok());
        assert!(key_config(&args(None, None, Some("1h"))).is_ok());
    }

    #[test]
    fn encrypt_decrypt_rewrap_take_files_and_contexts() {
        let t = transit(&["encrypt", "k", "plain.bin", "--context", "dGVuYW50"]).unwrap();
        let TransitCommand::Encrypt(a) = t.command else {
            panic!()
        };
        assert_eq!(a.file, Some(PathBuf::from("plain.bin")));
        assert_eq!(a.context.as_deref(), Some("dGVuYW50"));
        let TransitCommand::Decrypt(a) = transit(&["decrypt", "k", "-"]).unwrap().command else {
            panic!()
        };
        assert_eq!(a.file, Some(PathBuf::from("-")));
        let TransitCommand::Rewrap(a) = transit(&["rewrap", "k"]).unwrap().command else {
            panic!()
        };
        assert_eq!(a.batch_size, DEFAULT_BATCH_SIZE);
        assert!(a.file.is_none());
        assert!(transit(&["encrypt", "k", "--context", "not base64!"]).is_err());
        assert!(transit(&["rewrap", "k", "--batch-size", "0"]).is_err());
        assert!(transit(&["rewrap", "k", "--batch-size", "10001"]).is_err());
    }

    #[test]
    fn plaintext_is_never_an_argument() {
        // The only positional after the key name is a file path; a second one is refused,
        // and there is no flag that takes plaintext.
        assert!(transit(&["encrypt", "k", "file", "s3cr3t"]).is_err());
        assert!(transit(&["encrypt", "k", "--plaintext", "s3cr3t"]).is_err());
        assert!(transit(&["decrypt", "k", "--ciphertext", "vault:v1:x"]).is_err());
    }

    #[test]
    fn batches_respect_item_count_and_keep_blank_lines() {
        let input = b"vault:v1:a\n\nvault:v1:b\r\nvault:v1:c\nvault:v1:d";
        let mut r = std::io::Cursor::new(&input[..]);
        let mut n = 0;
        let b1 = read_batch(&mut r, 2, &mut n).unwrap();
        assert_eq!(
            b1,
            vec![
                Line::Ciphertext("vault:v1:a".into(), 1),
                Line::Blank,
                Line::Ciphertext("vault:v1:b".into(), 3),
            ]
        );
        let b2 = read_batch(&mut r, 2, &mut n).unwrap();
        assert_eq!(
            b2,
            vec![
                Line::Ciphertext("vault:v1:c".into(), 4),
                Line::Ciphertext("vault:v1:d".into(), 5),
            ]
        );
        assert!(read_batch(&mut r, 2, &mut n).unwrap().is_empty());
    }

    #[test]
    fn a_line_with_two_words_is_rejected_with_its_number() {
        let mut r = std::io::Cursor::new(&b"vault:v1:a\nvault:v1:b vault:v1:c\n"[..]);
        let mut n = 0;
        let err = read_batch(&mut r, 10, &mut n).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unix_times_are_formatted() {
        assert_eq!(unix_time(0), "1970-01-01T00:00:00Z");
    }
}
