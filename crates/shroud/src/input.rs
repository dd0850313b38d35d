//! Reading secrets from the user: files, stdin, and no-echo terminal prompts.
//!
//! Secrets (unseal keys, tokens, secret content) are never accepted as command-line arguments:
//! those are visible to every user through `ps` and `/proc/<pid>/cmdline`, and end up in shell
//! history. Buffers are sized up front and zeroized, so no partial copy is left behind by a
//! reallocation.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{bail, Context};
use shroud_core::{SecretBytes, SecretString};
use zeroize::Zeroizing;

/// Longest line accepted for a key or token.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Where content comes from: a file, or stdin for `-` / no argument.
pub fn read_content(source: Option<&Path>, max: usize) -> anyhow::Result<SecretBytes> {
    match source {
        Some(p) if p != Path::new("-") => {
            let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            read_bounded(f, max).with_context(|| format!("reading {}", p.display()))
        }
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!("reading the secret from the terminal; end it with Ctrl-D");
            }
            read_bounded(stdin.lock(), max).context("reading standard input")
        }
    }
}

/// Reads everything from `r`, failing if it holds more than `max` bytes.
pub fn read_bounded(r: impl Read, max: usize) -> anyhow::Result<SecretBytes> {
    let mut buf = Zeroizing::new(Vec::with_capacity(max.saturating_add(1).min(64 * 1024)));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    let mut r = r.take(max as u64 + 1);
    loop {
        let n = match r.read(&mut chunk[..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if buf.len() + n > max {
            bail!("the secret is larger than {max} bytes");
        }
        if buf.capacity() < buf.len() + n {
            // Grow by hand so the old buffer is zeroized (Zeroizing clears on drop).
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (buf.capacity() * 2).max(buf.len() + n).min(max),
            ));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(SecretBytes::from_slice(&buf))
}

/// Reads one secret line: with a no-echo prompt on a terminal, else the first line of stdin.
pub fn read_secret_line(prompt: &str) -> anyhow::Result<SecretString> {
    let stdin = io::stdin();
    let line = if stdin.is_terminal() {
        eprint!("{prompt}");
        io::stderr().flush().ok();
        let _echo = EchoOff::new(&stdin);
        let line = read_line(&mut stdin.lock())?;
        // The user's Enter was not echoed.
        eprintln!();
        line
    } else {
        read_line(&mut stdin.lock())?
    };
    match line {
        Some(l) if !l.expose().is_empty() => Ok(l),
        _ => bail!("no value was given on standard input"),
    }
}

/// Reads a one-line credential (AppRole secret id, JWT) from `file`, or from stdin when `file`
/// is `None` or `-` (a hidden prompt on a terminal, else the first line). Surrounding
/// whitespace is trimmed (files usually end with a newline); empty is an error.
pub fn read_credential(
    file: Option<&Path>,
    prompt: &str,
    max: usize,
) -> anyhow::Result<SecretString> {
    match file {
        Some(p) if p != Path::new("-") => {
            let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            let bytes = read_bounded(f, max).with_context(|| format!("reading {}", p.display()))?;
            let text = std::str::from_utf8(bytes.expose())
                .with_context(|| format!("{} is not UTF-8", p.display()))?;
            let t = text.trim();
            if t.is_empty() {
                bail!("{} is empty", p.display());
            }
            if t.contains(['\n', '\r']) {
                bail!("{} holds more than one line", p.display());
            }
            Ok(SecretString::from(t))
        }
        _ => read_secret_line(prompt),
    }
}

/// Reads every non-empty line of stdin (bounded count), for piping several unseal keys.
pub fn read_secret_lines(max_lines: usize) -> anyhow::Result<Vec<SecretString>> {
    let stdin = io::stdin();
    let mut lock = stdin.lock();
    let mut out = Vec::new();
    while let Some(line) = read_line(&mut lock)? {
        if line.expose().is_empty() {
            continue;
        }
        if out.len() == max_lines {
            bail!("more than {max_lines} lines on standard input");
        }
        out.push(line);
    }
    Ok(out)
}

/// True if stdin is a terminal (callers choose between prompting and reading a pipe).
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// Reads one line (without its line ending, surrounding whitespace trimmed); `None` at EOF.
pub fn read_line(r: &mut impl BufRead) -> anyhow::Result<Option<SecretString>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_LINE_BYTES + 1));
    let mut limited = r.take(MAX_LINE_BYTES as u64 + 1);
    let n = limited
        .read_until(b'\n', &mut buf)
        .context("reading standard input")?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_BYTES {
        bail!("the line on standard input is longer than {MAX_LINE_BYTES} bytes");
    }
    let text = std::str::from_utf8(&buf).context("standard input is not UTF-8")?;
    Ok(Some(SecretString::from(text.trim())))
}

/// Turns terminal echo off for as long as it lives (restored on drop, also on error paths).
/// If stdin is not a terminal or termios fails, it does nothing: the value is still read, only
/// echoed.
struct EchoOff<'a> {
    fd: &'a io::Stdin,
    saved: Option<rustix::termios::Termios>,
}

impl<'a> EchoOff<'a> {
    fn new(fd: &'a io::Stdin) -> Self {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let saved = tcgetattr(fd).ok();
        if let Some(orig) = &saved {
            let mut t = orig.clone();
            t.local_modes.remove(LocalModes::ECHO);
            // Still echo the newline so the terminal's cursor moves on.
            t.local_modes.insert(LocalModes::ECHONL);
            if tcsetattr(fd, OptionalActions::Now, &t).is_err() {
                tracing::warn!("could not turn off terminal echo");
                return Self { fd, saved: None };
            }
        }
        Self { fd, saved }
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        if let Some(orig) = &self.saved {
            let _ =
                rustix::termios::tcsetattr(self.fd, rustix::termios::OptionalActions::Now, orig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_bounded_accepts_up_to_the_limit() {
        let data = vec![7u8; 100_000];
        let s = read_bounded(&data[..], 100_000).unwrap();
        assert_eq!(s.expose(), &data[..]);
    }

    #[test]
    fn read_bounded_rejects_oversized_input() {
        let data = vec![7u8; 1001];
        assert!(read_bounded(&data[..], 1000).is_err());
    }

    #[test]
    fn lines_are_trimmed_and_eof_is_none() {
        let mut r = io::Cursor::new(b"  key-one \r\nkey-two\n".to_vec());
        assert_eq!(read_line(&mut r).unwrap().unwrap().expose(), "key-one");
        assert_eq!(read_line(&mut r).unwrap().unwrap().expose(), "key-two");
        assert!(read_line(&mut r).unwrap().is_none());
    }

    #[test]
    fn credential_file_is_trimmed_and_must_be_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sid");
        std::fs::write(&p, "  sid-value\n").unwrap();
        assert_eq!(
            read_credential(Some(&p), "", 1024).unwrap().expose(),
            "sid-value"
        );
        std::fs::write(&p, "a\nb\n").unwrap();
        assert!(read_credential(Some(&p), "", 1024).is_err());
        std::fs::write(&p, "\n").unwrap();
        assert!(read_credential(Some(&p), "", 1024).is_err());
        std::fs::write(&p, "x".repeat(2000)).unwrap();
        assert!(read_credential(Some(&p), "", 1024).is_err());
        assert!(read_credential(Some(&dir.path().join("missing")), "", 1024).is_err());
    }

    #[test]
    fn overlong_line_is_rejected() {
        let mut r = io::Cursor::new(vec![b'a'; MAX_LINE_BYTES + 10]);
        assert!(read_line(&mut r).is_err());
    }
}
