//! `shroud completions`: shell completion scripts.

use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

use crate::cli::Cli;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    /// Bash
    Bash,
    /// Zsh
    Zsh,
    /// Fish
    Fish,
}

/// Long help of the command, with examples.
pub const LONG_ABOUT: &str = "\
Print a completion script for a shell to standard output.

Examples:
  shroud completions bash > /etc/bash_completion.d/shroud
  shroud completions zsh > \"${fpath[1]}/_shroud\"
  shroud completions fish > ~/.config/fish/completions/shroud.fish";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate the script for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

pub fn run(a: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let shell = match a.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shroud", &mut out);
    super::print_text(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_script_mentions_subcommands() {
        let mut out = Vec::new();
        clap_complete::generate(Shell::Bash, &mut Cli::command(), "shroud", &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("secret") && s.contains("operator") && s.contains("rollback"));
    }
}
