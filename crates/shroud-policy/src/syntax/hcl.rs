//! The HCL form of a policy, read with `hcl-edit` (through `hcl-rs`) because it keeps the byte
//! span of every item, so each error can name its line.

use super::prescan;
use super::{RawField, RawRule};
use crate::error::{shorten, PolicyError};
use crate::MAX_RULES;
use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::structure::{Body, Structure};
use hcl::edit::Span;
use serde_json::{Map, Number, Value};

/// Byte offsets of line starts, to turn spans into 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }

    fn line(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        let at = span?.start;
        Some(match self.0.binary_search(&at) {
            Ok(i) => i + 1,
            Err(i) => i,
        })
    }
}

pub(super) fn parse(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    let text = prescan::prepare(text)?;
    let body = hcl::edit::parser::parse_body(&text).map_err(|e| PolicyError::Syntax {
        line: e.location().line(),
        column: e.location().column(),
        message: e.message().to_owned(),
    })?;
    let lines = Lines::new(&text);
    let mut rules = Vec::new();
    for item in body.iter() {
        match item {
            Structure::Attribute(attr) => match attr.key.value().as_str() {
                // The name comes from the API path; Vault ignores it in the text too.
                "name" => {}
                "path" => {
                    return Err(PolicyError::invalid(
                        lines.line(attr.span()),
                        None,
                        "write path rules as blocks: path \"<pattern>\" { ... }",
                    ))
                }
                other => {
                    return Err(PolicyError::invalid(
                        lines.line(attr.span()),
                        None,
                        format!("invalid key {:?}", shorten(other, 64)),
                    ))
                }
            },
            Structure::Block(block) => {
                let line = lines.line(block.span());
                let ident = block.ident.value().as_str();
                if ident != "path" {
                    return Err(PolicyError::invalid(
                        line,
                        None,
                        format!("invalid key {:?}", shorten(ident, 64)),
                    ));
                }
                let [label] = block.labels.as_slice() else {
                    return Err(PolicyError::invalid(
                        line,
                        None,
                        "a path block takes exactly one label, the path pattern",
                    ));
                };
                if rules.len() >= MAX_RULES {
                    return Err(PolicyError::TooManyRules { limit: MAX_RULES });
                }
                let pattern = label.as_str().to_owned();
                let fields = fields(&block.body, &pattern, &lines)?;
                rules.push(RawRule {
                    pattern,
                    line,
                    fields,
                });
            }
        }
    }
    Ok(rules)
}

fn fields(body: &Body, pattern: &str, lines: &Lines) -> Result<Vec<RawField>, PolicyError> {
    let mut out: Vec<RawField> = Vec::new();
    for item in body.iter() {
        let (key, value, line) = match item {
            Structure::Attribute(attr) => {
                let line = lines.line(attr.span());
                let value = to_json(&attr.value, pattern, lines)?;
                (attr.key.value().as_str().to_owned(), value, line)
            }
            // HCL 1 let parameter maps be written as nested blocks:
            // `allowed_parameters { foo = [] }`. Accept that for the two map-valued keys.
            Structure::Block(block)
                if block.labels.is_empty()
                    && matches!(
                        block.ident.value().as_str(),
                        "allowed_parameters" | "denied_parameters"
                    ) =>
            {
                let line = lines.line(block.span());
                let mut map = Map::new();
                for inner in block.body.iter() {
                    let Structure::Attribute(attr) = inner else {
                        return Err(PolicyError::invalid(
                            lines.line(inner.span()),
                            Some(pattern),
                            "parameter maps hold only `name = [values]` entries",
                        ));
                    };
                    map.insert(
                        attr.key.value().as_str().to_owned(),
                        to_json(&attr.value, pattern, lines)?,
                    );
                }
                (
                    block.ident.value().as_str().to_owned(),
                    Value::Object(map),
                    line,
                )
            }
            Structure::Block(block) => {
                return Err(PolicyError::invalid(
                    lines.line(block.span()),
                    Some(pattern),
                    format!(
                        "invalid key {:?}",
                        shorten(block.ident.value().as_str(), 64)
                    ),
                ))
            }
        };
        if out.iter().any(|f| f.key == key) {
            return Err(PolicyError::invalid(
                line,
                Some(pattern),
                format!("duplicate key {:?}", shorten(&key, 64)),
            ));
        }
        out.push(RawField { key, value, line });
    }
    Ok(out)
}

/// Turns a literal HCL expression into JSON. Anything that would need evaluation (variables,
/// function calls, conditionals, for-expressions, templates) is an error: a policy is data.
/// Recursion is bounded by the prescan's nesting limit.
fn to_json(expr: &Expression, pattern: &str, lines: &Lines) -> Result<Value, PolicyError> {
    let unsupported = |what: &str| {
        PolicyError::invalid(
            lines.line(expr.span()),
            Some(pattern),
            format!("{what} is not allowed here: use strings, numbers, booleans, lists and maps"),
        )
    };
    Ok(match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => {
            let n = n.value();
            let num = if let Some(u) = n.as_u64() {
                Number::from(u)
            } else if let Some(i) = n.as_i64() {
                Number::from(i)
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .ok_or_else(|| unsupported("this number"))?
            };
            Value::Number(num)
        }
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(a) => Value::Array(
            a.iter()
                .map(|e| to_json(e, pattern, lines))
                .collect::<Result<_, _>>()?,
        ),
        Expression::Object(o) => {
            let mut map = Map::new();
            for (k, v) in o.iter() {
                let key = match k {
                    ObjectKey::Ident(i) => i.value().as_str().to_owned(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                    ObjectKey::Expression(_) => return Err(unsupported("a computed map key")),
                };
                let value = to_json(v.expr(), pattern, lines)?;
                if map.insert(key.clone(), value).is_some() {
                    return Err(PolicyError::invalid(
                        lines.line(expr.span()),
                        Some(pattern),
                        format!("duplicate map key {:?}", shorten(&key, 64)),
                    ));
                }
            }
            Value::Object(map)
        }
        Expression::Parenthesis(p) => to_json(p.inner(), pattern, lines)?,
        Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
            return Err(unsupported("a template"))
        }
        Expression::Variable(_) | Expression::Traversal(_) => {
            return Err(unsupported("a variable (did you forget the quotes?)"))
        }
        _ => return Err(unsupported("an expression")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_and_values_with_lines() {
        let t = r#"
# comment
path "secret/*" {
  capabilities = ["read", "list"]
  allowed_parameters = {
    "foo" = []
    bar   = ["zip", 5, true]
  }
  min_wrapping_ttl = 60
}
"#;
        let rules = parse(t).unwrap();
        assert_eq!(rules.len(), 1);
        let r = &rules[0];
        assert_eq!(r.pattern, "secret/*");
        assert_eq!(r.line, Some(3));
        assert_eq!(r.fields[0].line, Some(4));
        assert_eq!(
            r.fields[1].value,
            serde_json::json!({"foo": [], "bar": ["zip", 5, true]})
        );
        assert_eq!(r.fields[2].value, serde_json::json!(60));
    }

    #[test]
    fn hcl1_parameter_blocks_are_accepted() {
        let t = "path \"a\" {\n  allowed_parameters {\n    foo = [\"x\"]\n  }\n}\n";
        let rules = parse(t).unwrap();
        assert_eq!(rules[0].fields[0].key, "allowed_parameters");
        assert_eq!(rules[0].fields[0].value, serde_json::json!({"foo": ["x"]}));
    }

    #[test]
    fn variables_are_rejected_with_line() {
        let e = parse("path \"a\" {\n  capabilities = [read]\n}\n").unwrap_err();
        assert!(
            matches!(e, PolicyError::Invalid { line: Some(2), .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("quotes"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = parse("path \"a\" {\n  capabilities = []\n  capabilities = []\n}\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn wrong_block_shapes_are_rejected() {
        assert!(parse("path {\n}\n").is_err());
        assert!(parse("path \"a\" \"b\" {\n}\n").is_err());
        assert!(parse("pathh \"a\" {\n}\n").is_err());
        assert!(parse("path = \"a\"\n").is_err());
        assert!(parse("name = \"x\"\n").unwrap().is_empty());
    }
}
