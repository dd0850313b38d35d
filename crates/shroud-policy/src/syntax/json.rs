//! The JSON form of a policy: `{"path": {"<pattern>": {"capabilities": [...]}}}`.
//!
//! Vault reads JSON through HCL 1, which also accepts a list where an object is expected
//! (`"path": [{"a": {...}}, {"b": {...}}]`), so both shapes are read here.

use super::{RawField, RawRule};
use crate::error::PolicyError;
use crate::MAX_RULES;
use serde_json::{Map, Value};

pub(super) fn parse(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    // serde_json bounds its own recursion (128 levels), so hostile nesting is an error here.
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_owned(),
            None => full,
        };
        PolicyError::Syntax {
            line: e.line(),
            column: e.column(),
            message,
        }
    })?;
    let Value::Object(top) = doc else {
        return Err(PolicyError::invalid(
            None,
            None,
            "a JSON policy must be an object",
        ));
    };
    let mut rules = Vec::new();
    for (key, value) in top {
        match key.as_str() {
            // The name comes from the API path; Vault ignores it in the text too.
            "name" => {}
            "path" => match value {
                Value::Object(paths) => add_paths(&mut rules, paths)?,
                Value::Array(items) => {
                    for item in items {
                        let Value::Object(paths) = item else {
                            return Err(PolicyError::invalid(
                                None,
                                None,
                                "\"path\" must map path patterns to rule objects",
                            ));
                        };
                        add_paths(&mut rules, paths)?;
                    }
                }
                _ => {
                    return Err(PolicyError::invalid(
                        None,
                        None,
                        "\"path\" must map path patterns to rule objects",
                    ))
                }
            },
            other => {
                return Err(PolicyError::invalid(
                    None,
                    None,
                    format!("invalid key {:?}", crate::error::shorten(other, 64)),
                ))
            }
        }
    }
    Ok(rules)
}

fn add_paths(rules: &mut Vec<RawRule>, paths: Map<String, Value>) -> Result<(), PolicyError> {
    for (pattern, body) in paths {
        if rules.len() >= MAX_RULES {
            return Err(PolicyError::TooManyRules { limit: MAX_RULES });
        }
        let mut fields = Vec::new();
        let mut add = |obj: Map<String, Value>, pattern: &str| -> Result<(), PolicyError> {
            for (key, value) in obj {
                if fields.iter().any(|f: &RawField| f.key == key) {
                    return Err(PolicyError::invalid(
                        None,
                        Some(pattern),
                        format!("duplicate key {key:?}"),
                    ));
                }
                fields.push(RawField {
                    key,
                    value,
                    line: None,
                });
            }
            Ok(())
        };
        match body {
            Value::Object(obj) => add(obj, &pattern)?,
            Value::Array(items) => {
                for item in items {
                    let Value::Object(obj) = item else {
                        return Err(PolicyError::invalid(
                            None,
                            Some(&pattern),
                            "a path rule must be an object",
                        ));
                    };
                    add(obj, &pattern)?;
                }
            }
            _ => {
                return Err(PolicyError::invalid(
                    None,
                    Some(&pattern),
                    "a path rule must be an object",
                ))
            }
        }
        rules.push(RawRule {
            pattern,
            line: None,
            fields,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_and_list_forms() {
        let a =
            parse(r#"{"path":{"a/*":{"capabilities":["read"]},"b":{"policy":"write"}}}"#).unwrap();
        assert_eq!(a.len(), 2);
        let b = parse(r#"{"path":[{"a/*":{"capabilities":["read"]}},{"b":[{"policy":"write"}]}]}"#)
            .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].fields[0].key, "policy");
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("{\n  \"path\": {\n    \"a\": {\"capabilities\": [\"read\"}\n  }\n}")
            .unwrap_err();
        assert!(matches!(e, PolicyError::Syntax { line: 3, .. }), "{e:?}");
    }

    #[test]
    fn unknown_top_level_key_is_rejected() {
        let e = parse(r#"{"paths":{}}"#).unwrap_err();
        assert!(e.to_string().contains("invalid key \"paths\""), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            r#"{{"path":{{"a":{{"x":{}{}}}}}}}"#,
            "[".repeat(50_000),
            "]".repeat(50_000)
        );
        assert!(parse(&deep).is_err());
    }
}
