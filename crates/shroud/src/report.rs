//! How failures reach the user: one `error:` line, an optional `hint:` line, and the exit code.
//!
//! Exit codes (also in `shroud --help` and docs/cli.md):
//! 0 success; 1 error; 2 usage error, or "sealed" for `operator status`.

use std::fmt;
use std::process::ExitCode;

use shroud_client::ClientError;

/// Any runtime error.
pub const EXIT_ERROR: u8 = 1;
/// Bad command line (clap's own code), and `operator status` on a sealed server.
pub const EXIT_USAGE: u8 = 2;
/// `operator status`: the server is sealed (same number as Vault's `vault status`).
pub const EXIT_SEALED: u8 = 2;

/// The exit code table printed at the end of `shroud --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  error (server unreachable, permission denied, not found, ...)
  2  usage error; for 'operator status': the server is sealed";

/// An error with a hint for the user. Its `Display` is the message only.
#[derive(Debug)]
pub struct Hinted {
    message: String,
    hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// A mistake in how the command was called that clap cannot catch (exit code 2).
#[derive(Debug)]
pub struct UsageError {
    message: String,
    hint: Option<String>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// An error with a hint line.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

/// A usage error (exit code 2), optionally with a hint.
pub fn usage(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
    anyhow::Error::new(UsageError {
        message: message.into(),
        hint: hint.map(str::to_owned),
    })
}

/// Prints `error: ...` (and `hint: ...`) to stderr and returns the exit code.
pub fn print_error(err: &anyhow::Error) -> ExitCode {
    let (text, code) = render(err);
    eprint!("{text}");
    ExitCode::from(code)
}

/// The text printed for `err` and the exit code; separate from printing for tests.
pub fn render(err: &anyhow::Error) -> (String, u8) {
    let mut out = format!("error: {err:#}\n");
    if let Some(hint) = hint_for(err) {
        out.push_str("hint: ");
        out.push_str(&hint);
        out.push('\n');
    }
    let code = if err.downcast_ref::<UsageError>().is_some()
        || err.chain().any(|e| e.is::<UsageError>())
    {
        EXIT_USAGE
    } else {
        EXIT_ERROR
    };
    (out, code)
}

fn hint_for(err: &anyhow::Error) -> Option<String> {
    // anyhow's own downcast also sees a context value attached with `.context(Hinted {..})`,
    // which the chain below only shows as an opaque wrapper.
    if let Some(h) = err.downcast_ref::<Hinted>() {
        return Some(h.hint.clone());
    }
    if let Some(u) = err.downcast_ref::<UsageError>() {
        return u.hint.clone();
    }
    for cause in err.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        if let Some(u) = cause.downcast_ref::<UsageError>() {
            return u.hint.clone();
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return client_hint(c);
        }
    }
    None
}

fn client_hint(e: &ClientError) -> Option<String> {
    let trust = "trust the server with SHROUD_CACERT=<ca.pem>, or pin its certificate with \
                 SHROUD_TLS_FINGERPRINT=sha256:<hex> (printed by 'shroud server' at start)";
    let hint = match e {
        ClientError::Connect { .. } | ClientError::Timeout { .. } => {
            "is the server running? start one with 'shroud server --dev', or set SHROUD_ADDR \
             to its address"
        }
        ClientError::Tls { .. } | ClientError::NoTrustAnchor { .. } => trust,
        ClientError::InvalidAddress { .. } => {
            "SHROUD_ADDR (or --addr) must look like http://127.0.0.1:8200 or https://host:8200"
        }
        ClientError::Api { status: 403, .. } => {
            "check that a valid token is set (SHROUD_TOKEN or 'shroud login') and that its \
             policies allow this path ('shroud token lookup' shows them)"
        }
        ClientError::Api { status: 503, .. } => "unseal it with 'shroud operator unseal'",
        ClientError::Api { status: 501, .. } => "initialize it with 'shroud operator init'",
        _ => return None,
    };
    Some(hint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_gets_a_policy_hint_and_exit_1() {
        let e = anyhow::Error::new(ClientError::Api {
            status: 403,
            errors: vec!["permission denied".into()],
        })
        .context("reading secret app/db");
        let (text, code) = render(&e);
        assert_eq!(code, EXIT_ERROR);
        assert!(
            text.starts_with("error: reading secret app/db: permission denied\nhint: "),
            "{text}"
        );
        assert!(text.contains("policies"));
    }

    #[test]
    fn sealed_server_hints_at_unseal() {
        let e = anyhow::Error::new(ClientError::Api {
            status: 503,
            errors: vec![],
        });
        let (text, _) = render(&e);
        assert!(text.contains("error: server is sealed"), "{text}");
        assert!(text.contains("hint: unseal it with 'shroud operator unseal'"));
    }

    #[test]
    fn connection_refused_hints_at_starting_a_server() {
        let e = anyhow::Error::new(ClientError::Connect {
            addr: "http://127.0.0.1:8200".into(),
            reason: "Connection refused (os error 111)".into(),
        });
        let (text, _) = render(&e);
        assert!(text.contains("shroud server --dev") && text.contains("SHROUD_ADDR"));
    }

    #[test]
    fn usage_errors_exit_2() {
        let (text, code) = render(&usage(
            "a configuration file is required",
            Some("use --dev"),
        ));
        assert_eq!(code, EXIT_USAGE);
        assert_eq!(
            text,
            "error: a configuration file is required\nhint: use --dev\n"
        );
    }

    #[test]
    fn explicit_hint_wins_over_derived_one() {
        let e = anyhow::Error::new(ClientError::Api {
            status: 400,
            errors: vec!["check-and-set parameter did not match the current version".into()],
        })
        .context(Hinted {
            message: "secret db already exists".into(),
            hint: "use 'shroud secret update'".into(),
        });
        let (text, _) = render(&e);
        assert!(text.contains("hint: use 'shroud secret update'"), "{text}");
    }
}
