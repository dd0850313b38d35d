//! `shroud login`: get a token (an existing one, or by logging in with AppRole, a JWT or a
//! Kubernetes service-account token) and remember it in `~/.shroud-token`.
//!
//! Every credential (token, secret id, JWT) comes from a file or stdin, never from an argument.
//! The AppRole role id may be an argument: it names the role and is useless without the secret
//! id.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use shroud_client::ClientError;
use shroud_core::{duration, SecretString};

use super::{check_mount, check_name, print_text, Ctx};
use crate::connection::{token_file_path, TokenSource};
use crate::input;
use crate::report::{hinted, usage};

/// Where Kubernetes mounts a pod's service-account token.
pub const KUBERNETES_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Longest JWT accepted from a file (service-account tokens are about 1 KiB).
const MAX_JWT_BYTES: usize = 64 * 1024;
/// Longest secret id accepted from a file (Vault's are 36-character UUIDs).
const MAX_SECRET_ID_BYTES: usize = 4096;
/// Longest role id accepted.
const MAX_ROLE_ID_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LoginMethod {
    /// An existing token, read from stdin or a hidden prompt
    #[default]
    Token,
    /// AppRole: --role-id plus a secret id from stdin or --secret-id-file
    Approle,
    /// JWT/OIDC auth: a signed JWT from --jwt-file or stdin
    Jwt,
    /// Kubernetes auth: the pod's service-account token
    Kubernetes,
}

impl LoginMethod {
    fn name(self) -> &'static str {
        match self {
            LoginMethod::Token => "token",
            LoginMethod::Approle => "approle",
            LoginMethod::Jwt => "jwt",
            LoginMethod::Kubernetes => "kubernetes",
        }
    }
}

/// Long help of the command, with examples.
pub const LONG_ABOUT: &str = "\
Get a token and store it in ~/.shroud-token (mode 0600), where later commands find it when \
SHROUD_TOKEN and VAULT_TOKEN are unset. The policies and TTL are printed; the token itself \
only with --print-token.

Methods (--mount defaults to the method's name):
  token       an existing token: hidden prompt on a terminal, else the first line of stdin;
              checked with auth/token/lookup-self
  approle     --role-id, and the secret id from stdin or --secret-id-file
  jwt         --role (optional with a default role) and a JWT from --jwt-file or stdin
  kubernetes  --role and the pod's service-account token (default --jwt-file
              /var/run/secrets/kubernetes.io/serviceaccount/token)

Tokens, secret ids and JWTs are never taken from the command line; '-' as a file means \
standard input.

Examples:
  shroud login
  printf '%s' \"$TOKEN\" | shroud login
  shroud login --method approle --role-id \"$ROLE_ID\" --secret-id-file /run/secrets/secret-id
  shroud login --method kubernetes --role web
  shroud login --method jwt --role ci --jwt-file \"$CI_JOB_JWT_FILE\" --mount gitlab";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// How to authenticate
    #[arg(long, value_enum, default_value_t = LoginMethod::Token)]
    pub method: LoginMethod,
    /// Mount path of the auth method, below auth/ [default: the method's name]
    #[arg(long, value_name = "MOUNT")]
    pub mount: Option<String>,
    /// Role to log in as (jwt, kubernetes)
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// AppRole role id (not secret; the secret id is read from stdin)
    #[arg(long, value_name = "ID")]
    pub role_id: Option<String>,
    /// File holding the AppRole secret id ('-' = stdin) [default: stdin]
    #[arg(long, value_name = "FILE")]
    pub secret_id_file: Option<PathBuf>,
    /// File holding the JWT ('-' = stdin) [default: stdin; kubernetes: the pod's token]
    #[arg(long, value_name = "FILE")]
    pub jwt_file: Option<PathBuf>,
    /// Also print the new token on stdout
    #[arg(long)]
    pub print_token: bool,
}

/// What a login will do, once the flags are checked against the method.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Verify and store an existing token.
    Token,
    /// AppRole login.
    AppRole {
        mount: String,
        role_id: String,
        secret_id_file: Option<PathBuf>,
    },
    /// JWT or Kubernetes login. `jwt_file: None` is stdin.
    Jwt {
        mount: String,
        role: Option<String>,
        jwt_file: Option<PathBuf>,
    },
}

/// Checks that every flag given applies to the method (a stray flag is a usage error rather
/// than silently ignored) and fills in the defaults.
fn plan(a: &LoginArgs) -> anyhow::Result<Plan> {
    let method = a.method;
    let not_for = |flag: &str| {
        usage(
            format!("{flag} does not apply to --method {}", method.name()),
            None,
        )
    };
    if method != LoginMethod::Approle {
        if a.role_id.is_some() {
            return Err(not_for("--role-id"));
        }
        if a.secret_id_file.is_some() {
            return Err(not_for("--secret-id-file"));
        }
    }
    if !matches!(method, LoginMethod::Jwt | LoginMethod::Kubernetes) {
        if a.role.is_some() {
            return Err(not_for("--role"));
        }
        if a.jwt_file.is_some() {
            return Err(not_for("--jwt-file"));
        }
    }
    let mount = a.mount.clone().unwrap_or_else(|| method.name().to_owned());
    check_mount(&mount)?;
    match method {
        LoginMethod::Token => {
            if a.mount.is_some() {
                return Err(not_for("--mount"));
            }
            Ok(Plan::Token)
        }
        LoginMethod::Approle => {
            let role_id = a.role_id.clone().ok_or_else(|| {
                usage(
                    "--method approle needs --role-id",
                    Some("read it with 'shroud approle role-id ROLE'"),
                )
            })?;
            if role_id.is_empty()
                || role_id.len() > MAX_ROLE_ID_BYTES
                || role_id.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(usage("invalid --role-id", None));
            }
            Ok(Plan::AppRole {
                mount,
                role_id,
                secret_id_file: a.secret_id_file.clone(),
            })
        }
        LoginMethod::Jwt | LoginMethod::Kubernetes => {
            if let Some(r) = &a.role {
                check_name("role", r, "role names are single words like 'web'")?;
            } else if method == LoginMethod::Kubernetes {
                return Err(usage("--method kubernetes needs --role", None));
            }
            let jwt_file = match (&a.jwt_file, method) {
                (Some(p), _) if p == Path::new("-") => None,
                (Some(p), _) => Some(p.clone()),
                (None, LoginMethod::Kubernetes) => Some(PathBuf::from(KUBERNETES_TOKEN_PATH)),
                (None, _) => None,
            };
            Ok(Plan::Jwt {
                mount,
                role: a.role.clone(),
                jwt_file,
            })
        }
    }
}

/// What the login produced, for the summary line.
struct LoggedIn {
    token: SecretString,
    policies: Vec<String>,
    ttl: u64,
    token_type: String,
}

pub async fn run(args: LoginArgs, ctx: Ctx) -> anyhow::Result<ExitCode> {
    let plan = plan(&args)?;
    // Checked before any credential is read: a single-use secret id must not be spent on a
    // login whose token cannot be stored.
    let path = token_file_path(&ctx.env).ok_or_else(|| {
        hinted(
            "HOME is not set, so there is nowhere to store the token",
            "set HOME, or export SHROUD_TOKEN instead of logging in",
        )
    })?;
    let method = args.method.name();
    let logged_in = match plan {
        Plan::Token => {
            let token = input::read_secret_line("Token (input is hidden): ")?;
            let info = ctx
                .client
                .with_token(Some(token.clone()))
                .token_lookup_self()
                .await
                .map_err(|e| {
                    rejected(
                        e,
                        "the token was rejected by the server",
                        "check that it is valid and not expired or revoked",
                        "checking the token",
                    )
                })?;
            LoggedIn {
                token,
                policies: info.policies,
                ttl: info.ttl,
                token_type: info.token_type,
            }
        }
        Plan::AppRole {
            mount,
            role_id,
            secret_id_file,
        } => {
            let secret_id = input::read_credential(
                secret_id_file.as_deref(),
                "Secret id (input is hidden): ",
                MAX_SECRET_ID_BYTES,
            )
            .context("reading the secret id")?;
            let auth = ctx
                .client
                .approle(&mount)
                .login(&role_id, &secret_id)
                .await
                .map_err(|e| {
                    rejected(
                        e,
                        "the AppRole login was rejected",
                        "check the role id and the secret id: secret ids expire and may allow \
                         only a limited number of logins",
                        &format!("logging in at auth/{mount}"),
                    )
                })?;
            LoggedIn {
                token: auth.client_token,
                policies: auth.policies,
                ttl: auth.lease_duration,
                token_type: auth.token_type,
            }
        }
        Plan::Jwt {
            mount,
            role,
            jwt_file,
        } => {
            let jwt = input::read_credential(
                jwt_file.as_deref(),
                "JWT (input is hidden): ",
                MAX_JWT_BYTES,
            )
            .context("reading the JWT")?;
            let auth = ctx
                .client
                .login_jwt(&mount, role.as_deref(), &jwt)
                .await
                .map_err(|e| {
                    rejected(
                        e,
                        "the JWT login was rejected",
                        "check --role and that the JWT is valid, unexpired and matches the \
                         role's bound claims",
                        &format!("logging in at auth/{mount}"),
                    )
                })?;
            LoggedIn {
                token: auth.client_token,
                policies: auth.policies,
                ttl: auth.lease_duration,
                token_type: auth.token_type,
            }
        }
    };
    shroud_core::secret_file::write_atomic(&path, logged_in.token.expose().as_bytes(), 0o600)
        .with_context(|| format!("storing the token in {}", path.display()))?;
    let ttl = if logged_in.ttl == 0 {
        "never expires".to_owned()
    } else {
        duration::go_string(logged_in.ttl)
    };
    let kind = if logged_in.token_type == "batch" {
        ", batch token"
    } else {
        ""
    };
    eprintln!(
        "logged in ({method}): token stored in {} (policies: {}; ttl: {ttl}{kind})",
        path.display(),
        logged_in.policies.join(", ")
    );
    if args.print_token {
        let line = zeroize::Zeroizing::new(format!("{}\n", logged_in.token.expose()));
        print_text(&line)?;
    }
    if let TokenSource::Env(var) = ctx.token_source {
        eprintln!("warning: {var} is set and takes precedence over the stored token");
    }
    Ok(ExitCode::SUCCESS)
}

/// A 400/403 from a login is a rejected credential: say so with a hint; anything else keeps
/// its own message and hint (connection refused, sealed, ...).
fn rejected(e: ClientError, message: &str, hint: &str, doing: &str) -> anyhow::Error {
    if matches!(e.status(), Some(400) | Some(403)) {
        hinted(format!("{message}: {e}"), hint)
    } else {
        anyhow::Error::new(e).context(doing.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn login(args: &[&str]) -> Result<LoginArgs, clap::Error> {
        match Cli::try_parse_from(["shroud", "login"].iter().chain(args))?.command {
            Command::Login(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    fn planned(args: &[&str]) -> anyhow::Result<Plan> {
        plan(&login(args).unwrap())
    }

    #[test]
    fn token_is_the_default_method() {
        assert_eq!(planned(&[]).unwrap(), Plan::Token);
        assert_eq!(planned(&["--method", "token"]).unwrap(), Plan::Token);
        assert!(login(&["--print-token"]).unwrap().print_token);
    }

    #[test]
    fn approle_needs_a_role_id_and_reads_the_secret_id_from_stdin_or_a_file() {
        assert_eq!(
            planned(&["--method", "approle", "--role-id", "rid"]).unwrap(),
            Plan::AppRole {
                mount: "approle".into(),
                role_id: "rid".into(),
                secret_id_file: None,
            }
        );
        assert_eq!(
            planned(&[
                "--method",
                "approle",
                "--role-id",
                "rid",
                "--mount",
                "ci-approle",
                "--secret-id-file",
                "/run/secrets/sid",
            ])
            .unwrap(),
            Plan::AppRole {
                mount: "ci-approle".into(),
                role_id: "rid".into(),
                secret_id_file: Some(PathBuf::from("/run/secrets/sid")),
            }
        );
        let err = planned(&["--method", "approle"]).unwrap_err();
        assert_eq!(crate::report::render(&err).1, crate::report::EXIT_USAGE);
        assert!(planned(&["--method", "approle", "--role-id", "a b"]).is_err());
    }

    #[test]
    fn kubernetes_defaults_to_the_service_account_token() {
        assert_eq!(
            planned(&["--method", "kubernetes", "--role", "web"]).unwrap(),
            Plan::Jwt {
                mount: "kubernetes".into(),
                role: Some("web".into()),
                jwt_file: Some(PathBuf::from(KUBERNETES_TOKEN_PATH)),
            }
        );
        assert_eq!(
            planned(&["--method", "kubernetes", "--role", "web", "--jwt-file", "-"]).unwrap(),
            Plan::Jwt {
                mount: "kubernetes".into(),
                role: Some("web".into()),
                jwt_file: None,
            }
        );
        assert!(planned(&["--method", "kubernetes"]).is_err(), "role needed");
    }

    #[test]
    fn jwt_reads_stdin_by_default_and_may_omit_the_role() {
        assert_eq!(
            planned(&["--method", "jwt", "--mount", "gitlab"]).unwrap(),
            Plan::Jwt {
                mount: "gitlab".into(),
                role: None,
                jwt_file: None,
            }
        );
        assert_eq!(
            planned(&["--method", "jwt", "--role", "ci", "--jwt-file", "/tmp/jwt"]).unwrap(),
            Plan::Jwt {
                mount: "jwt".into(),
                role: Some("ci".into()),
                jwt_file: Some(PathBuf::from("/tmp/jwt")),
            }
        );
    }

    #[test]
    fn flags_of_another_method_are_usage_errors() {
        for args in [
            &["--method", "token", "--role", "r"][..],
            &["--method", "token", "--mount", "m"],
            &["--method", "token", "--jwt-file", "f"],
            &["--method", "jwt", "--role-id", "rid"],
            &[
                "--method",
                "kubernetes",
                "--role",
                "r",
                "--secret-id-file",
                "f",
            ],
            &["--method", "approle", "--role-id", "rid", "--role", "r"],
            &["--method", "approle", "--role-id", "rid", "--jwt-file", "f"],
        ] {
            let err = planned(args).unwrap_err();
            assert_eq!(
                crate::report::render(&err).1,
                crate::report::EXIT_USAGE,
                "{args:?}"
            );
        }
        assert!(login(&["--method", "ldap"]).is_err());
    }

    #[test]
    fn no_credential_is_accepted_as_an_argument() {
        // Tokens, secret ids and JWTs have no flag and no positional.
        for args in [
            &["hvs.token"][..],
            &["--token", "hvs.token"],
            &[
                "--method",
                "approle",
                "--role-id",
                "r",
                "--secret-id",
                "sid",
            ],
            &["--method", "approle", "--role-id", "r", "sid"],
            &["--method", "jwt", "--jwt", "e.y.j"],
            &["--method", "kubernetes", "--role", "r", "e.y.j"],
        ] {
            assert!(login(args).is_err(), "{args:?}");
        }
    }
}
