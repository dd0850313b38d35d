//! Errors of policy parsing. Every message is meant for the person who wrote the policy: it says
//! what is wrong and where (line, and the path rule it belongs to).

use std::fmt;

/// Why a policy (or its name) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy name is empty, too long, or has a character outside `[a-z0-9_.-]`.
    #[error("invalid policy name: {0}")]
    InvalidName(&'static str),

    /// The policy text is larger than [`crate::MAX_POLICY_BYTES`].
    #[error("policy is too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Size of the text in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// The policy has more path rules than [`crate::MAX_RULES`].
    #[error("policy has more than {limit} path rules")]
    TooManyRules {
        /// The limit.
        limit: usize,
    },

    /// The text is not valid HCL (or JSON, for a policy that starts with `{`).
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },

    /// The text parses, but something in it is not a valid policy.
    #[error("{}{message}", Where { line: *line, path: path.as_deref() })]
    Invalid {
        /// 1-based line of the offending item, when known (JSON policies carry none).
        line: Option<usize>,
        /// The path rule the item belongs to, if any.
        path: Option<String>,
        /// What is wrong.
        message: String,
    },
}

impl PolicyError {
    pub(crate) fn invalid(
        line: Option<usize>,
        path: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        PolicyError::Invalid {
            line,
            path: path.map(|p| shorten(p, 256)),
            message: message.into(),
        }
    }
}

/// Renders the "where" prefix of an [`PolicyError::Invalid`] message.
struct Where<'a> {
    line: Option<usize>,
    path: Option<&'a str>,
}

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.path) {
            (Some(l), Some(p)) => write!(f, "line {l}: path {p:?}: "),
            (Some(l), None) => write!(f, "line {l}: "),
            (None, Some(p)) => write!(f, "path {p:?}: "),
            (None, None) => Ok(()),
        }
    }
}

/// Cuts user input echoed in an error message to `max` characters, so one huge token cannot
/// blow up an error response.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_message_says_where() {
        let e = PolicyError::invalid(Some(3), Some("secret/*"), "unknown capability \"reed\"");
        assert_eq!(
            e.to_string(),
            "line 3: path \"secret/*\": unknown capability \"reed\""
        );
        let e = PolicyError::invalid(None, None, "x");
        assert_eq!(e.to_string(), "x");
    }

    #[test]
    fn echoed_input_is_bounded() {
        let long = "a".repeat(10_000);
        let e = PolicyError::invalid(None, Some(&long), "bad");
        assert!(e.to_string().len() < 400);
    }
}
