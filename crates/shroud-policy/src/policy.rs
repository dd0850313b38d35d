//! A parsed policy: its name, its raw text, and its validated path rules.

use crate::capabilities::Capabilities;
use crate::error::{shorten, PolicyError};
use crate::syntax::{self, RawField, RawRule};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest policy text accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;
/// Most path rules one policy may hold.
pub const MAX_RULES: usize = 10_000;
/// Longest policy name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest path pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Most entries in one list or map of a rule (capabilities, parameter names, parameter values).
pub const MAX_LIST_LEN: usize = 1024;

/// A parsed ACL policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Normalised (lower-case) name.
    pub name: String,
    /// The text exactly as submitted; `sys/policy/<name>` returns it.
    pub raw: String,
    rules: Vec<PathRule>,
}

impl Policy {
    /// The path rules, in the order written.
    pub fn rules(&self) -> &[PathRule] {
        &self.rules
    }
}

/// One `path "<pattern>" { ... }` rule, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRule {
    pattern: String,
    capabilities: Capabilities,
    allowed_parameters: BTreeMap<String, Vec<Value>>,
    denied_parameters: BTreeMap<String, Vec<Value>>,
    required_parameters: Vec<String>,
    min_wrapping_ttl: Option<Duration>,
    max_wrapping_ttl: Option<Duration>,
    templated: bool,
    line: Option<usize>,
}

impl PathRule {
    /// The pattern as written, without a leading `/` (Vault strips it too).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
    /// The capabilities granted (`DENY` alone for a deny rule).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
    /// `allowed_parameters`, names lower-cased; an empty list allows any value.
    pub fn allowed_parameters(&self) -> &BTreeMap<String, Vec<Value>> {
        &self.allowed_parameters
    }
    /// `denied_parameters`, names lower-cased; an empty list denies any value.
    pub fn denied_parameters(&self) -> &BTreeMap<String, Vec<Value>> {
        &self.denied_parameters
    }
    /// `required_parameters`, lower-cased.
    pub fn required_parameters(&self) -> &[String] {
        &self.required_parameters
    }
    /// `min_wrapping_ttl`, if set and non-zero.
    pub fn min_wrapping_ttl(&self) -> Option<Duration> {
        self.min_wrapping_ttl
    }
    /// `max_wrapping_ttl`, if set and non-zero.
    pub fn max_wrapping_ttl(&self) -> Option<Duration> {
        self.max_wrapping_ttl
    }
    /// True if the pattern uses Vault identity templating (`{{identity.entity.id}}`). shroud
    /// has no identity store, so such a rule never matches (Vault likewise skips a templated
    /// rule it cannot fill in).
    pub fn is_templated(&self) -> bool {
        self.templated
    }
    /// 1-based line of the rule in HCL text.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

/// Lower-cases and checks a policy name.
///
/// Names are stored under `sys/policy/<name>` and appear in URLs, so only `[a-z0-9_.-]` is
/// accepted (after lower-casing, as Vault does), at most [`MAX_NAME_LEN`] bytes, and not `.`
/// or `..`.
pub fn normalize_name(name: &str) -> Result<String, PolicyError> {
    if name.is_empty() {
        return Err(PolicyError::InvalidName("the name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(PolicyError::InvalidName(
            "the name is longer than 128 bytes",
        ));
    }
    let lower = name.to_ascii_lowercase();
    if !lower
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(PolicyError::InvalidName(
            "only letters, digits, '_', '.' and '-' are allowed",
        ));
    }
    if lower == "." || lower == ".." {
        return Err(PolicyError::InvalidName("'.' and '..' are not names"));
    }
    Ok(lower)
}

/// Parses a policy from HCL or JSON text (JSON if it starts with `{`).
///
/// `name` is validated and lower-cased with [`normalize_name`]. Errors say what is wrong and,
/// for HCL, on which line.
pub fn parse_policy(name: &str, text: &str) -> Result<Policy, PolicyError> {
    let name = normalize_name(name)?;
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            size: text.len(),
            limit: MAX_POLICY_BYTES,
        });
    }
    // Editors on Windows may prepend a byte-order mark; it is not part of the policy.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rules = syntax::parse(body)?
        .into_iter()
        .map(build_rule)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Policy {
        name,
        raw: text.to_owned(),
        rules,
    })
}

fn build_rule(raw: RawRule) -> Result<PathRule, PolicyError> {
    let RawRule {
        pattern,
        line,
        fields,
    } = raw;
    let pattern = check_pattern(&pattern, line)?;
    let err = |field_line: Option<usize>, msg: String| {
        PolicyError::invalid(field_line.or(line), Some(&pattern), msg)
    };

    let mut caps = Capabilities::NONE;
    let mut rule = PathRule {
        pattern: pattern.clone(),
        capabilities: Capabilities::NONE,
        allowed_parameters: BTreeMap::new(),
        denied_parameters: BTreeMap::new(),
        required_parameters: Vec::new(),
        min_wrapping_ttl: None,
        max_wrapping_ttl: None,
        templated: pattern.contains("{{"),
        line,
    };

    for RawField {
        key,
        value,
        line: fl,
    } in fields
    {
        match key.as_str() {
            "capabilities" => {
                let list = string_list(&value)
                    .ok_or_else(|| err(fl, "capabilities must be a list of strings".to_owned()))?;
                for name in list {
                    caps |= Capabilities::from_name(name).ok_or_else(|| {
                        err(
                            fl,
                            format!(
                                "unknown capability {:?} (expected create, read, update, \
                                 patch, delete, list, sudo or deny)",
                                shorten(name, 64)
                            ),
                        )
                    })?;
                }
            }
            // The pre-capabilities syntax, still accepted by Vault: `policy = "write"`.
            "policy" => {
                let Value::String(p) = &value else {
                    return Err(err(fl, "policy must be a string".to_owned()));
                };
                caps |= match p.as_str() {
                    "deny" => Capabilities::DENY,
                    "read" => Capabilities::READ | Capabilities::LIST,
                    "write" => {
                        Capabilities::CREATE
                            | Capabilities::READ
                            | Capabilities::UPDATE
                            | Capabilities::DELETE
                            | Capabilities::LIST
                    }
                    "sudo" => {
                        Capabilities::CREATE
                            | Capabilities::READ
                            | Capabilities::UPDATE
                            | Capabilities::DELETE
                            | Capabilities::LIST
                            | Capabilities::SUDO
                    }
                    other => {
                        return Err(err(
                            fl,
                            format!(
                                "invalid policy {:?} (expected deny, read, write or sudo)",
                                shorten(other, 64)
                            ),
                        ))
                    }
                };
            }
            "allowed_parameters" | "denied_parameters" => {
                let map = parameter_map(&value).map_err(|m| err(fl, format!("{key}: {m}")))?;
                if key == "allowed_parameters" {
                    rule.allowed_parameters = map;
                } else {
                    rule.denied_parameters = map;
                }
            }
            "required_parameters" => {
                let list = string_list(&value).ok_or_else(|| {
                    err(
                        fl,
                        "required_parameters must be a list of strings".to_owned(),
                    )
                })?;
                for p in list {
                    if p.contains('*') {
                        return Err(err(
                            fl,
                            format!(
                                "required_parameters: {:?}: wildcards are not allowed here",
                                shorten(p, 64)
                            ),
                        ));
                    }
                    let p = p.to_lowercase();
                    if !rule.required_parameters.contains(&p) {
                        rule.required_parameters.push(p);
                    }
                }
            }
            "min_wrapping_ttl" | "max_wrapping_ttl" => {
                let ttl = duration(&value).map_err(|m| err(fl, format!("{key}: {m}")))?;
                if key == "min_wrapping_ttl" {
                    rule.min_wrapping_ttl = ttl;
                } else {
                    rule.max_wrapping_ttl = ttl;
                }
            }
            // Free text for humans (OpenBao/Vault accept it).
            "comment" => {}
            // Enterprise features that restrict access further. Ignoring them would grant
            // more than the author meant, so refuse instead.
            "mfa_methods" | "control_group" => {
                return Err(err(fl, format!("{key} is not supported by shroud")));
            }
            other => {
                return Err(err(fl, format!("invalid key {:?}", shorten(other, 64))));
            }
        }
    }

    if let (Some(min), Some(max)) = (rule.min_wrapping_ttl, rule.max_wrapping_ttl) {
        if max < min {
            return Err(err(
                line,
                "max_wrapping_ttl cannot be less than min_wrapping_ttl".to_owned(),
            ));
        }
    }
    // Vault: a deny rule carries nothing else, parameters included.
    if caps.is_deny() {
        rule.allowed_parameters.clear();
        rule.denied_parameters.clear();
        rule.required_parameters.clear();
    }
    rule.capabilities = caps.normalized();
    Ok(rule)
}

/// Validates a path pattern and strips one leading `/`, as Vault does.
fn check_pattern(pattern: &str, line: Option<usize>) -> Result<String, PolicyError> {
    let invalid = |m: &str| PolicyError::invalid(line, Some(pattern), m);
    let p = pattern.strip_prefix('/').unwrap_or(pattern);
    if p.len() > MAX_PATTERN_LEN {
        return Err(invalid("the path pattern is longer than 4096 bytes"));
    }
    if p.chars().any(char::is_control) {
        return Err(invalid("the path pattern contains a control character"));
    }
    if p.contains("+*") {
        return Err(invalid("invalid use of wildcards ('+*' is forbidden)"));
    }
    if let Some(pos) = p.find('*') {
        if pos != p.len() - 1 {
            return Err(invalid(
                "'*' is only allowed as the last character of a path pattern",
            ));
        }
    }
    Ok(p.to_owned())
}

fn string_list(v: &Value) -> Option<Vec<&str>> {
    let Value::Array(items) = v else {
        return None;
    };
    if items.len() > MAX_LIST_LEN {
        return None;
    }
    items.iter().map(Value::as_str).collect()
}

/// `{ "name" = [values], ... }`, names lower-cased (Vault compares them lower-cased).
fn parameter_map(v: &Value) -> Result<BTreeMap<String, Vec<Value>>, String> {
    let Value::Object(obj) = v else {
        return Err("must be a map of parameter names to lists of values".to_owned());
    };
    if obj.len() > MAX_LIST_LEN {
        return Err(format!("more than {MAX_LIST_LEN} parameters"));
    }
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, values) in obj {
        let shown = || shorten(name, 64);
        if name.starts_with('/') {
            return Err(format!(
                "{:?}: JSON-pointer parameter names are not supported",
                shown()
            ));
        }
        if name.contains('*') && name != "*" {
            return Err(format!(
                "{:?}: the only wildcard parameter name is \"*\"",
                shown()
            ));
        }
        let Value::Array(values) = values else {
            return Err(format!("{:?}: must be a list of values", shown()));
        };
        if values.len() > MAX_LIST_LEN {
            return Err(format!("{:?}: more than {MAX_LIST_LEN} values", shown()));
        }
        if values.iter().any(|v| v.is_object()) {
            return Err(format!("{:?}: values must not be maps", shown()));
        }
        // Two spellings of one name (`Foo`, `foo`) merge like two policies do.
        match out.entry(name.to_lowercase()) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(values.clone());
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                if values.is_empty() || e.get().is_empty() {
                    e.get_mut().clear();
                } else {
                    e.get_mut().extend(values.iter().cloned());
                }
            }
        }
    }
    Ok(out)
}

/// A wrapping TTL: a duration string (`"90s"`, `"1h"`, `"300"`) or whole seconds. Zero is
/// "unset", as in Vault.
fn duration(v: &Value) -> Result<Option<Duration>, String> {
    let d = match v {
        Value::String(s) => shroud_core::duration::parse(s).map_err(|e| e.to_string())?,
        Value::Number(n) => {
            let secs = n
                .as_u64()
                .ok_or_else(|| "must be a non-negative whole number of seconds".to_owned())?;
            if secs > shroud_core::duration::MAX_DURATION_SECS {
                return Err("is too long".to_owned());
            }
            Duration::from_secs(secs)
        }
        _ => return Err("must be a duration such as \"90s\" or a number of seconds".to_owned()),
    };
    Ok((!d.is_zero()).then_some(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> PathRule {
        let p = parse_policy("t", text).unwrap();
        assert_eq!(p.rules().len(), 1);
        p.rules()[0].clone()
    }

    #[test]
    fn names_are_lowercased_and_checked() {
        assert_eq!(normalize_name("My-Policy_1.x").unwrap(), "my-policy_1.x");
        for bad in ["", "a/b", "a b", "..", ".", "é", &"a".repeat(129)] {
            assert!(normalize_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_policy("ADMIN", "").unwrap().name, "admin");
    }

    #[test]
    fn legacy_policy_values_map_to_capabilities() {
        let r = one("path \"a\" {\n  policy = \"write\"\n}\n");
        assert_eq!(
            r.capabilities().names(),
            ["create", "delete", "list", "read", "update"]
        );
        let r = one("path \"a\" {\n  policy = \"read\"\n}\n");
        assert_eq!(r.capabilities().names(), ["list", "read"]);
        let r = one("path \"a\" {\n  policy = \"sudo\"\n}\n");
        assert!(r.capabilities().contains(Capabilities::SUDO));
        let r = one("path \"a\" {\n  policy = \"deny\"\n  capabilities = [\"read\"]\n}\n");
        assert_eq!(r.capabilities(), Capabilities::DENY);
        assert!(parse_policy("t", "path \"a\" {\n  policy = \"admin\"\n}\n").is_err());
    }

    #[test]
    fn unknown_capability_is_an_error_with_line() {
        let e =
            parse_policy("t", "\npath \"a/*\" {\n  capabilities = [\"reed\"]\n}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: path \"a/*\": unknown capability \"reed\" (expected create, read, \
             update, patch, delete, list, sudo or deny)"
        );
    }

    #[test]
    fn star_in_the_middle_is_rejected() {
        for bad in ["secret/*/foo", "*secret", "secret/+*", "a**"] {
            let text = format!("path \"{bad}\" {{\n  capabilities = [\"read\"]\n}}\n");
            assert!(parse_policy("t", &text).is_err(), "{bad} accepted");
        }
        assert_eq!(one("path \"/secret/*\" {\n}\n").pattern(), "secret/*");
    }

    #[test]
    fn parameters_and_ttls_are_kept() {
        let r = one(r#"path "a" {
  capabilities = ["update"]
  allowed_parameters = { "Foo" = [], "bar" = ["zip", "zap"] }
  denied_parameters = { "baz" = [] }
  required_parameters = ["Foo"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = 90
}
"#);
        assert_eq!(r.allowed_parameters()["foo"], Vec::<Value>::new());
        assert_eq!(
            r.allowed_parameters()["bar"],
            vec![json!("zip"), json!("zap")]
        );
        assert!(r.denied_parameters().contains_key("baz"));
        assert_eq!(r.required_parameters(), ["foo"]);
        assert_eq!(r.min_wrapping_ttl(), Some(Duration::from_secs(60)));
        assert_eq!(r.max_wrapping_ttl(), Some(Duration::from_secs(90)));
    }

    #[test]
    fn bad_parameters_and_ttls_are_rejected() {
        for body in [
            "allowed_parameters = { \"a*\" = [] }",
            "allowed_parameters = { \"/a/b\" = [] }",
            "allowed_parameters = { \"a\" = \"x\" }",
            "required_parameters = [\"*\"]",
            "min_wrapping_ttl = \"soon\"",
            "max_wrapping_ttl = -1",
            "min_wrapping_ttl = \"2m\"\n  max_wrapping_ttl = \"1m\"",
            "mfa_methods = [\"x\"]",
            "capabilites = [\"read\"]",
        ] {
            let text = format!("path \"a\" {{\n  {body}\n}}\n");
            assert!(parse_policy("t", &text).is_err(), "{body} accepted");
        }
    }

    #[test]
    fn templated_paths_are_flagged() {
        let r = one("path \"identity/entity/id/{{identity.entity.id}}\" {\n  capabilities = [\"read\"]\n}\n");
        assert!(r.is_templated());
    }

    #[test]
    fn size_is_bounded() {
        let big = "#".repeat(MAX_POLICY_BYTES + 1);
        assert!(matches!(
            parse_policy("t", &big),
            Err(PolicyError::TooLarge { .. })
        ));
    }

    #[test]
    fn rule_count_is_bounded() {
        let mut text = String::new();
        for i in 0..=MAX_RULES {
            text.push_str(&format!("path \"p{i}\" {{\n}}\n"));
        }
        assert!(matches!(
            parse_policy("t", &text),
            Err(PolicyError::TooManyRules { .. })
        ));
    }
}
