//! Parsing: the forms real policies are written in, and hostile or broken input.

use shroud_policy::{parse_policy, Acl, Operation, PolicyError};

#[test]
fn vault_docs_style_policy_parses() {
    let text = r#"
# Dev servers have version 2 of KV secrets engine mounted by default, so will
# need these paths to grant permissions:
path "secret/data/*" {
  capabilities = ["create", "update"]
}

path "secret/data/foo" {
  capabilities = ["read"]
}

path "secret/foo" {
  capabilities = ["create"]
  allowed_parameters = {
    "bar" = ["zip", "zap"]
    "*"   = []
  }
  denied_parameters = {
    "salary" = []
  }
}

path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
"#;
    let p = parse_policy("docs", text).unwrap();
    assert_eq!(p.rules().len(), 4);
    assert_eq!(p.raw, text);
    let a = Acl::new(&[&p]);
    assert!(a.check("secret/data/foo", Operation::Read).allowed);
    assert!(!a.check("secret/data/foo", Operation::Update).allowed);
    assert!(a.check("secret/data/bar", Operation::Update).allowed);
    assert!(a.check("sys/mounts/kv", Operation::Update).sudo);
}

#[test]
fn hcl1_brace_on_its_own_line_parses() {
    // A common style in published policies (Vault parses HCL 1, which allows it).
    let text = "path \"sys/health\"\n{\n  capabilities = [\"read\", \"sudo\"]\n}\n\npath \"sys/policies/acl\"\n{\n  capabilities = [\"list\"]\n}\n";
    let p = parse_policy("admin", text).unwrap();
    assert_eq!(p.rules().len(), 2);
    assert_eq!(p.rules()[1].line(), Some(6));
    // And an error after such a block still points at the right line.
    let bad = format!("{text}path \"x\"\n{{\n  capabilities = [\"nope\"]\n}}\n");
    let e = parse_policy("admin", &bad).unwrap_err();
    assert!(e.to_string().starts_with("line 12:"), "{e}");
}

#[test]
fn crlf_line_endings_and_a_byte_order_mark_are_accepted() {
    let text = "\u{feff}# windows\r\npath \"a/*\"\r\n{\r\n  capabilities = [\"read\"]\r\n}\r\n";
    let p = parse_policy("win", text).unwrap();
    assert_eq!(p.raw, text);
    assert!(Acl::new(&[&p]).check("a/b", Operation::Read).allowed);
}

#[test]
fn empty_policy_is_valid_and_grants_nothing() {
    let p = parse_policy("empty", "# nothing\n").unwrap();
    assert!(p.rules().is_empty());
    assert!(!Acl::new(&[&p]).check("a", Operation::Read).allowed);
}

#[test]
fn malformed_hcl_is_an_error_with_a_line() {
    let cases: &[(&str, usize)] = &[
        ("path \"a\" {\n  capabilities = [\"read\"\n}\n", 3),
        ("path \"a\" {\n  capabilities = [\"read\"]\n", 2),
        ("path \"a\" {\n  capabilities = \"read\n}\n", 2),
        ("path \"a\" {\n  capabilities == [\"read\"]\n}\n", 2),
    ];
    for (text, line) in cases {
        match parse_policy("bad", text) {
            Err(PolicyError::Syntax { line: l, .. }) => assert_eq!(l, *line, "{text:?}"),
            other => panic!("{text:?}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn semantic_errors_name_line_and_path() {
    let e = parse_policy(
        "p",
        "path \"a\" {\n  capabilities = [\"read\"]\n}\npath \"b/*/c\" {\n  capabilities = [\"read\"]\n}\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 4: path \"b/*/c\": '*' is only allowed as the last character of a path pattern"
    );
    let e = parse_policy("p", "path \"a\" {\n\n  capabilities = \"read\"\n}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 3: path \"a\": capabilities must be a list of strings"
    );
}

#[test]
fn json_errors_name_the_path() {
    let e = parse_policy("p", r#"{"path": {"a/*": {"capabilities": ["fly"]}}}"#).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("path \"a/*\": unknown capability \"fly\""),
        "{e}"
    );
    let e = parse_policy("p", "{\"path\": ").unwrap_err();
    assert!(matches!(e, PolicyError::Syntax { line: 1, .. }), "{e:?}");
}

#[test]
fn hostile_inputs_are_errors_not_crashes() {
    let n = 200_000;
    let cases = [
        format!("a = {}", "[".repeat(n)),
        format!("a = {}1", "!".repeat(n)),
        format!("a = 1{}", "+1".repeat(n)),
        format!("a = 1{}", "-1".repeat(n)),
        format!("a = 1{}", "/1".repeat(n)),
        format!("a = {}", "(".repeat(n)),
        format!("a = \"${{{}}}\"", "x+".repeat(n)),
        "{".repeat(n),
        format!("path \"a\" {}", "{".repeat(n)),
        format!("a = x{}", ".y".repeat(n)),
        format!("a = x{}", "[0]".repeat(n)),
        "\u{0}\u{1}\u{2}".to_owned(),
        "path \"\u{7}\" {\n}\n".to_owned(),
    ];
    for text in &cases {
        assert!(
            parse_policy("h", text).is_err(),
            "{:?} accepted",
            &text[..20.min(text.len())]
        );
    }
}

/// Every prefix and many single-byte mutations of a valid policy either parse or give an
/// error; none panics. (A cheap deterministic stand-in for the fuzz target.)
#[test]
fn mutated_policies_never_panic() {
    let base = r#"path "secret/+/data/*" {
  capabilities = ["read", "list"]
  allowed_parameters = { "a" = ["x*", 1, true], "*" = [] }
  min_wrapping_ttl = "1m"
}
path "sys/x"
{
  policy = "write"
}
"#;
    for end in 0..=base.len() {
        if base.is_char_boundary(end) {
            let _ = parse_policy("m", &base[..end]);
        }
    }
    let alphabet = b"{}[]()\"=,:#/*+-!$%\n \\.0aZ";
    let mut seed: u64 = 0x5eed;
    for _ in 0..5_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pos = (seed >> 33) as usize % base.len();
        let byte = alphabet[(seed >> 17) as usize % alphabet.len()];
        let mut bytes = base.as_bytes().to_vec();
        bytes[pos] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            if let Ok(p) = parse_policy("m", &text) {
                let a = Acl::new(&[&p]);
                let _ = a.check("secret/x/data/y", Operation::List);
            }
        }
    }
}
