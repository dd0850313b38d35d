//! Vault's duration syntax.
//!
//! Clients send TTLs as Go duration strings (`"1h30m"`, `"90s"`, `"500ms"`), as bare integers
//! of seconds (`3600`, `"3600"`), or as `"0"`/`""` for "unset". Vault prints durations with
//! Go's `Duration.String()` (`"1h0m0s"`, `"0s"`), which KV v2 metadata echoes.

use std::time::Duration;

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}")]
pub struct DurationError(pub String);

/// Longest duration accepted from input: 100 years. Bounds every TTL a client can ask for.
pub const MAX_DURATION_SECS: u64 = 100 * 365 * 24 * 3600;

/// Parses `"1h30m"`, `"90s"`, `"2.5h"`, `"300"` (seconds) or `""` (zero).
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.chars().take(64).collect());
    let t = s.trim();
    if t.is_empty() {
        return Ok(Duration::ZERO);
    }
    if let Ok(secs) = t.parse::<u64>() {
        return bounded(Duration::from_secs(secs)).ok_or_else(err);
    }
    let mut total = 0f64;
    let mut rest = t;
    if rest.starts_with('-') {
        return Err(err());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total += value * mult;
        if !total.is_finite() || total > MAX_DURATION_SECS as f64 {
            return Err(err());
        }
    }
    bounded(Duration::from_secs_f64(total)).ok_or_else(err)
}

fn bounded(d: Duration) -> Option<Duration> {
    (d.as_secs() <= MAX_DURATION_SECS).then_some(d)
}

/// Parses a JSON value that may be a number of seconds or a duration string.
/// `null` is zero (hvac sends `null` for unset options).
pub fn from_json_like(v: Option<&str>, n: Option<u64>) -> Result<Duration, DurationError> {
    match (v, n) {
        (Some(s), _) => parse(s),
        (None, Some(n)) => bounded(Duration::from_secs(n)).ok_or(DurationError(n.to_string())),
        (None, None) => Ok(Duration::ZERO),
    }
}

/// Formats whole seconds as Go's `Duration.String()`: `0s`, `45s`, `1m30s`, `1h0m0s`.
pub fn go_string(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let h = secs / 3600;
    let m = (secs % 3600) / 60;
    let s = secs % 60;
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vault_forms() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1h0m0s").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("").unwrap(), Duration::ZERO);
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172800));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "abc",
            "1x",
            "-5s",
            "h",
            "1h-3m",
            "s1",
            "+",
            "99999999999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(go_string(0), "0s");
        assert_eq!(go_string(45), "45s");
        assert_eq!(go_string(90), "1m30s");
        assert_eq!(go_string(3600), "1h0m0s");
        assert_eq!(go_string(90061), "25h1m1s");
    }
}
