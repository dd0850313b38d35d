//! API paths: validation and percent-encoding.
//!
//! Vault paths are `/`-separated segments after `/v1/`. The client percent-encodes every byte
//! outside the URL "unreserved" set (keeping `/`), as hvac does with `urllib.parse.quote`, so a
//! key with a space, `?` or `#` reaches the server as the key and not as a query or fragment.
//!
//! Invariant: a path with a `.` or `..` segment is refused. URL parsers (and the WHATWG rules
//! reqwest follows) resolve dot segments, even percent-encoded ones, so `secret/data/../../sys/seal`
//! would silently become a request to `sys/seal`.

use crate::ClientError;

/// Longest API path accepted, in bytes. Far above any real key; bounds what we encode.
pub const MAX_PATH_BYTES: usize = 4096;

/// Checks `path` (without the `/v1/` prefix) and returns it percent-encoded.
/// Leading, trailing and repeated slashes are collapsed like hvac does, except that one trailing
/// slash is kept (LIST on a folder is spelled `secret/metadata/app/`).
pub fn encode(path: &str) -> Result<String, ClientError> {
    let invalid = |reason| ClientError::InvalidPath {
        path: path.chars().take(200).collect(),
        reason,
    };
    if path.len() > MAX_PATH_BYTES {
        return Err(invalid("longer than 4096 bytes"));
    }
    let trailing_slash = path.ends_with('/') && !path.trim_matches('/').is_empty();
    let mut out = String::with_capacity(path.len() + 8);
    let mut first = true;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(invalid("'.' and '..' segments are not allowed"));
        }
        if !first {
            out.push('/');
        }
        first = false;
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
    if out.is_empty() {
        return Err(invalid("empty path"));
    }
    if trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// Joins a mount, an engine sub-path and a key: `join(&["secret", "data", "app/db"])`.
pub fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_through() {
        assert_eq!(encode("secret/data/app/db").unwrap(), "secret/data/app/db");
        assert_eq!(encode("/sys//health").unwrap(), "sys/health");
        assert_eq!(
            encode("secret/metadata/app/").unwrap(),
            "secret/metadata/app/"
        );
    }

    #[test]
    fn special_characters_are_percent_encoded() {
        assert_eq!(encode("secret/data/a b").unwrap(), "secret/data/a%20b");
        assert_eq!(
            encode("secret/data/x?list=true#f").unwrap(),
            "secret/data/x%3Flist%3Dtrue%23f"
        );
        assert_eq!(encode("secret/data/100%").unwrap(), "secret/data/100%25");
        assert_eq!(encode("secret/data/é").unwrap(), "secret/data/%C3%A9");
    }

    #[test]
    fn dot_segments_are_rejected() {
        for bad in ["secret/data/../../sys/seal", "secret/./x", "..", "/./"] {
            assert!(
                matches!(encode(bad), Err(ClientError::InvalidPath { .. })),
                "{bad}"
            );
        }
        // Dots inside a segment are ordinary characters.
        assert_eq!(encode("secret/data/a..b").unwrap(), "secret/data/a..b");
    }

    #[test]
    fn empty_and_oversized_paths_are_rejected() {
        assert!(encode("").is_err());
        assert!(encode("///").is_err());
        assert!(encode(&"a".repeat(MAX_PATH_BYTES + 1)).is_err());
    }

    #[test]
    fn join_trims_slashes() {
        assert_eq!(join(&["secret/", "data", "/app/db"]), "secret/data/app/db");
        assert_eq!(join(&["secret", "metadata", ""]), "secret/metadata");
    }
}
