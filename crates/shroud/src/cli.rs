//! The command tree. Each group's arguments live next to its implementation in `cmd::*`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd::{
    approle, audit, auth, completions, login, operator, policy, secret, server, token, transit,
    wrapping,
};
use crate::report::EXIT_CODES_HELP;

const LONG_ABOUT: &str = "\
shroud keeps an application's secrets encrypted, versioned, access-controlled and audited, and \
speaks the HashiCorp Vault HTTP API, so Vault clients work with it unchanged.

This one binary is both the server ('shroud server') and its client (every other command).

Environment:
  SHROUD_ADDR / VAULT_ADDR             server address (default http://127.0.0.1:8200)
  SHROUD_TOKEN / VAULT_TOKEN           token (else ~/.shroud-token, written by 'shroud login')
  SHROUD_CACERT / VAULT_CACERT         PEM file of CA certificates to trust for https
  SHROUD_TLS_FINGERPRINT               pin the server certificate: sha256:<hex>
  SHROUD_LOG                           log filter for stderr (default: warn; info for 'server')

Example:
  shroud server --dev &
  export SHROUD_ADDR=http://127.0.0.1:8200 SHROUD_TOKEN=<root token printed by the server>
  printf 's3cr3t' | shroud secret create db-password
  shroud secret get db-password";

/// shroud: a secrets manager that speaks the Vault API.
#[derive(Debug, Parser)]
#[command(
    name = "shroud",
    version,
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES_HELP,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Connection flags accepted by every client command.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Server address [default: $SHROUD_ADDR, $VAULT_ADDR, http://127.0.0.1:8200]
    #[arg(long, global = true, value_name = "URL")]
    pub addr: Option<String>,
    /// PEM file of CA certificates to trust [default: $SHROUD_CACERT, $VAULT_CACERT]
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Trust exactly the server certificate with this fingerprint
    /// [default: $SHROUD_TLS_FINGERPRINT]
    #[arg(long, global = true, value_name = "sha256:HEX")]
    pub tls_fingerprint: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a shroud server
    #[command(long_about = server::LONG_ABOUT)]
    Server(server::ServerArgs),
    /// Initialize, unseal, seal and rotate the server
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Create, read and manage secrets (Docker-style verbs)
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Manage ACL policies
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Create, look up and revoke tokens
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Work with audit logs
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Encrypt, decrypt and rewrap with named keys (transit engine)
    Transit(transit::TransitArgs),
    /// Enable, list and disable auth methods
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Manage AppRole roles and secret ids
    Approle(approle::ApproleArgs),
    /// Log in (token, AppRole, JWT, Kubernetes) and store the token in ~/.shroud-token
    #[command(long_about = login::LONG_ABOUT)]
    Login(login::LoginArgs),
    /// Unwrap a response-wrapping token read from stdin
    #[command(long_about = wrapping::LONG_ABOUT)]
    Unwrap(wrapping::UnwrapArgs),
    /// Print a shell completion script
    #[command(long_about = completions::LONG_ABOUT)]
    Completions(completions::CompletionsArgs),
}

impl Command {
    /// Log level when `SHROUD_LOG` is not set: the server's startup lines are `info`.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Server(_) => "info",
            _ => "warn",
        }
    }
}

/// Output format of commands that print structured data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable table
    #[default]
    Table,
    /// JSON, for scripts
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("shroud").chain(args.iter().copied()))
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_addr_is_accepted_after_the_subcommand() {
        let cli = parse(&["secret", "ls", "--addr", "http://h:1"]).unwrap();
        assert_eq!(cli.global.addr.as_deref(), Some("http://h:1"));
        let cli = parse(&["--addr", "http://h:2", "policy", "ls"]).unwrap();
        assert_eq!(cli.global.addr.as_deref(), Some("http://h:2"));
    }

    #[test]
    fn unknown_command_is_a_usage_error() {
        let err = parse(&["frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    /// Arguments end up in `ps`, `/proc/<pid>/cmdline` and shell history: no argument of any
    /// command may carry a token, secret id, JWT, plaintext or password. Flags naming a file
    /// (`--secret-id-file`, `--jwt-file`) and settings about such values (`--secret-id-ttl`,
    /// `--wrap-ttl`, `--print-token`) are fine; `server --dev-root-token` is the one documented
    /// dev-mode exception.
    #[test]
    fn no_argument_carries_a_secret() {
        const SECRETISH: &[&str] = &[
            "token",
            "secret-id",
            "secret_id",
            "jwt",
            "plaintext",
            "password",
            "unseal",
        ];
        fn walk(cmd: &clap::Command, path: &str, seen: &mut usize) {
            for arg in cmd.get_arguments() {
                if !arg.get_action().takes_values() {
                    continue;
                }
                *seen += 1;
                let name = arg
                    .get_long()
                    .map(str::to_owned)
                    .unwrap_or_else(|| arg.get_id().as_str().to_owned())
                    .to_ascii_lowercase();
                let harmless = name.ends_with("-file")
                    || name.ends_with("-ttl")
                    || name.ends_with("-num-uses")
                    || (path == "shroud server" && name == "dev-root-token");
                assert!(
                    harmless || !SECRETISH.iter().any(|w| name.contains(w)),
                    "{path} takes a secret-looking argument {name:?}"
                );
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), seen);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut seen = 0;
        walk(&cmd, "shroud", &mut seen);
        assert!(seen > 50, "the walk saw only {seen} arguments");
    }

    #[test]
    fn every_command_has_help_with_an_example() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.has_subcommands() {
                    walk(sub, &p);
                } else {
                    let long = sub
                        .get_long_about()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    assert!(long.contains("Example"), "{p} has no example in long_about");
                }
            }
        }
        walk(&Cli::command(), "shroud");
    }
}
