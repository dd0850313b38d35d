//! `shroud audit`: offline checks of audit logs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use shroud_audit::VerifyReport;

use super::print_text;
use crate::report::EXIT_ERROR;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log file (offline)
    #[command(long_about = "\
Check an audit log written by a file audit device: every record must carry the hash of the \
record before it, so a deleted, inserted, reordered or edited line breaks the chain. Runs \
offline on the file; no server or token is needed.

Prints 'OK: N records, hash chain intact' and exits 0, or 'BROKEN at line N: reason' and exits 1.

Example:
  shroud audit verify /var/log/shroud/audit.log")]
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Audit log file
    pub file: PathBuf,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify(a) => {
            let report = shroud_audit::verify_file(&a.file)
                .with_context(|| format!("verifying {}", a.file.display()))?;
            match report {
                VerifyReport::Ok { lines } => {
                    print_text(&format!("OK: {lines} records, hash chain intact\n"))?;
                    Ok(ExitCode::SUCCESS)
                }
                VerifyReport::Broken { line, reason } => {
                    print_text(&format!("BROKEN at line {line}: {reason}\n"))?;
                    Ok(ExitCode::from(EXIT_ERROR))
                }
            }
        }
    }
}
