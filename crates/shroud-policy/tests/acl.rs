//! ACL evaluation against Vault's documented semantics (policies.mdx, vault/acl.go).

use serde_json::{json, Map, Value};
use shroud_policy::{parse_policy, AccessRequest, Acl, Capabilities, Operation, Policy};
use std::time::Duration;

fn policy(name: &str, rules: &[(&str, &str)]) -> Policy {
    let mut text = String::new();
    for (pattern, caps) in rules {
        text.push_str(&format!(
            "path \"{pattern}\" {{\n  capabilities = [{caps}]\n}}\n"
        ));
    }
    parse_policy(name, &text).unwrap()
}

fn acl(rules: &[(&str, &str)]) -> Acl {
    let p = policy("p", rules);
    Acl::new(&[&p])
}

/// Each row: two patterns that both match `path`, and the one Vault picks. The winner grants
/// `read`, the loser `list`, and the policy is compiled in both orders.
#[test]
fn glob_precedence_follows_vaults_five_rules() {
    let rows: &[(&str, &str, &str, &str)] = &[
        // (winner, loser, path, which rule decides)
        (
            "secret/*",
            "secret/+/+/foo/*",
            "secret/a/b/foo/c",
            "3: fewer + (reference example)",
        ),
        ("foo/a*", "foo/+", "foo/ab", "1: later first wildcard"),
        (
            "foo/bar/+/baz",
            "foo/+/bar/baz",
            "foo/bar/bar/baz",
            "1: later first wildcard",
        ),
        ("foo/+/bar", "foo/+/ba*", "foo/x/bar", "2: not ending in *"),
        ("foo/+", "foo/*", "foo/x", "2: not ending in *"),
        ("foo/+/bar/+", "foo/+/+/+", "foo/a/bar/c", "3: fewer +"),
        (
            "foo/+/bar/ba*",
            "foo/+/bar/b*",
            "foo/x/bar/baz",
            "4: longer",
        ),
        (
            "foo/+/x/+",
            "foo/+/+/y",
            "foo/a/x/y",
            "5: lexicographically greater",
        ),
        (
            "secret/app/*",
            "secret/*",
            "secret/app/x",
            "1: longest prefix",
        ),
        (
            "secret/foo",
            "secret/foo*",
            "secret/foo",
            "exact beats glob",
        ),
        ("secret/foo", "secret/+", "secret/foo", "exact beats glob"),
        (
            "secret/foo/",
            "secret/foo/*",
            "secret/foo/",
            "exact beats glob",
        ),
    ];
    for (winner, loser, path, why) in rows {
        for order in [
            [(*winner, "\"read\""), (*loser, "\"list\"")],
            [(*loser, "\"list\""), (*winner, "\"read\"")],
        ] {
            let a = acl(&order);
            assert_eq!(
                a.capabilities(path),
                Capabilities::READ,
                "{winner} should beat {loser} on {path} ({why})"
            );
            assert!(a.check(path, Operation::Read).allowed, "{why}");
        }
    }
}

#[test]
fn no_union_across_different_patterns() {
    let a = acl(&[("secret/*", "\"read\""), ("secret/app/*", "\"list\"")]);
    assert!(!a.check("secret/app/x", Operation::Read).allowed);
    assert!(a.check("secret/other", Operation::Read).allowed);
}

#[test]
fn star_is_a_prefix_match_and_plus_one_segment() {
    let a = acl(&[("secret/foo*", "\"read\""), ("kv/+/teamb", "\"read\"")]);
    for ok in ["secret/foo", "secret/food", "secret/foo/bar"] {
        assert!(a.check(ok, Operation::Read).allowed, "{ok}");
    }
    assert!(!a.check("secret/fo", Operation::Read).allowed);
    assert!(a.check("kv/x/teamb", Operation::Read).allowed);
    assert!(!a.check("kv/x/y/teamb", Operation::Read).allowed);
    assert!(!a.check("kv/teamb", Operation::Read).allowed);
    assert!(!a.check("kv/x/teamb/z", Operation::Read).allowed);
}

#[test]
fn plus_and_star_combine() {
    let a = acl(&[("secret/+/foo/*", "\"read\"")]);
    assert!(a.check("secret/a/foo/b", Operation::Read).allowed);
    assert!(a.check("secret/a/foo/b/c", Operation::Read).allowed);
    assert!(a.check("secret/a/foo/", Operation::Read).allowed);
    assert!(!a.check("secret/a/foo", Operation::Read).allowed);
    assert!(!a.check("secret/a/b/foo/c", Operation::Read).allowed);
}

#[test]
fn no_match_is_denied() {
    let a = acl(&[("secret/data/app", "\"read\"")]);
    let d = a.check("secret/data/other", Operation::Read);
    assert!(!d.allowed && !d.sudo);
    assert_eq!(a.capabilities("secret/data/other"), Capabilities::NONE);
    assert_eq!(a.capabilities("secret/data/other").names(), ["deny"]);
    assert!(!Acl::new(&[]).check("anything", Operation::Read).allowed);
}

#[test]
fn operation_needs_its_own_capability() {
    let a = acl(&[("secret/data/app", "\"read\", \"update\"")]);
    assert!(a.check("secret/data/app", Operation::Read).allowed);
    assert!(a.check("secret/data/app", Operation::Update).allowed);
    for op in [
        Operation::Create,
        Operation::Patch,
        Operation::Delete,
        Operation::List,
    ] {
        assert!(!a.check("secret/data/app", op).allowed, "{op:?}");
    }
}

#[test]
fn list_path_is_sanitised_to_a_trailing_slash() {
    let a = acl(&[("secret/metadata/app/", "\"list\"")]);
    assert!(a.check("secret/metadata/app", Operation::List).allowed);
    assert!(a.check("secret/metadata/app/", Operation::List).allowed);
    // A read of the same path is not sanitised.
    let r = acl(&[("secret/metadata/app/", "\"read\"")]);
    assert!(!r.check("secret/metadata/app", Operation::Read).allowed);
}

#[test]
fn list_matches_an_exact_rule_without_trailing_slash() {
    let a = acl(&[("secret/metadata/app", "\"list\", \"read\"")]);
    assert!(a.check("secret/metadata/app/", Operation::List).allowed);
    assert!(a.check("secret/metadata/app", Operation::List).allowed);
    assert!(!a.check("secret/metadata/app/", Operation::Read).allowed);
}

#[test]
fn list_matches_a_wildcard_without_trailing_slash_since_vault_1_15() {
    let a = acl(&[("secret/+/app", "\"list\"")]);
    assert!(a.check("secret/metadata/app/", Operation::List).allowed);
    assert!(a.check("secret/metadata/app", Operation::List).allowed);
    let b = acl(&[("secret/metadata/ap*", "\"list\"")]);
    assert!(b.check("secret/metadata/app", Operation::List).allowed);
    // `secret/metadata/*` does not cover listing the mount's metadata root itself...
    let c = acl(&[("secret/metadata/*", "\"list\"")]);
    assert!(c.check("secret/metadata/", Operation::List).allowed);
    assert!(c.check("secret/metadata/app/", Operation::List).allowed);
    assert!(!c.check("secret/", Operation::List).allowed);
}

#[test]
fn deny_wins_across_policies() {
    let allow = policy("allow", &[("secret/*", "\"read\", \"sudo\"")]);
    let deny = policy("deny", &[("secret/*", "\"deny\"")]);
    for set in [[&allow, &deny], [&deny, &allow]] {
        let a = Acl::new(&set);
        let d = a.check("secret/x", Operation::Read);
        assert!(!d.allowed);
        assert!(!d.sudo, "deny overrides sudo");
        assert_eq!(a.capabilities("secret/x"), Capabilities::DENY);
        assert_eq!(a.capabilities("secret/x").names(), ["deny"]);
    }
}

#[test]
fn deny_on_a_more_specific_pattern_carves_out() {
    let a = acl(&[("secret/*", "\"read\""), ("secret/private/*", "\"deny\"")]);
    assert!(a.check("secret/public", Operation::Read).allowed);
    assert!(!a.check("secret/private/key", Operation::Read).allowed);
}

#[test]
fn same_pattern_is_unioned_across_policies() {
    let p1 = policy("one", &[("secret/*", "\"read\"")]);
    let p2 = policy("two", &[("secret/*", "\"list\"")]);
    let a = Acl::new(&[&p1, &p2]);
    assert_eq!(
        a.capabilities("secret/x"),
        Capabilities::READ | Capabilities::LIST
    );
    assert!(a.check("secret/x", Operation::Read).allowed);
    assert!(a.check("secret/x/", Operation::List).allowed);
    assert_eq!(a.capabilities("secret/x").names(), ["list", "read"]);
}

#[test]
fn same_pattern_twice_in_one_policy_is_unioned() {
    let a = acl(&[("secret/*", "\"read\""), ("secret/*", "\"update\"")]);
    assert!(a.check("secret/x", Operation::Update).allowed);
    assert!(a.check("secret/x", Operation::Read).allowed);
}

#[test]
fn sudo_is_reported_by_the_matching_rule() {
    let a = acl(&[
        ("sys/audit/*", "\"update\", \"sudo\""),
        ("sys/mounts/*", "\"update\""),
    ]);
    let d = a.check("sys/audit/file", Operation::Update);
    assert!(d.allowed && d.sudo);
    let d = a.check("sys/mounts/kv", Operation::Update);
    assert!(d.allowed && !d.sudo);
    // sudo alone does not grant the operation.
    let s = acl(&[("sys/seal", "\"sudo\"")]);
    let d = s.check("sys/seal", Operation::Update);
    assert!(!d.allowed && d.sudo);
}

#[test]
fn root_allows_everything() {
    let root = parse_policy("root", "").unwrap();
    let other = policy("other", &[("secret/*", "\"deny\"")]);
    for a in [Acl::root(), Acl::new(&[&other, &root])] {
        assert!(a.is_root());
        let d = a.check("secret/x", Operation::Delete);
        assert!(d.allowed && d.sudo);
        assert!(a.capabilities("sys/seal").contains(Capabilities::SUDO));
        assert!(!a.capabilities("sys/seal").is_deny());
    }
    assert!(!acl(&[]).is_root());
}

#[test]
fn leading_slashes_are_ignored() {
    let a = acl(&[("/secret/data/app", "\"read\"")]);
    assert!(a.check("secret/data/app", Operation::Read).allowed);
    assert!(a.check("/secret/data/app", Operation::Read).allowed);
}

#[test]
fn templated_rules_never_match() {
    let p = parse_policy(
        "t",
        "path \"secret/{{identity.entity.id}}/*\" {\n  capabilities = [\"read\"]\n}\n",
    )
    .unwrap();
    let a = Acl::new(&[&p]);
    assert!(
        !a.check("secret/{{identity.entity.id}}/x", Operation::Read)
            .allowed
    );
}

#[test]
fn legacy_and_capability_forms_agree() {
    let legacy = parse_policy("l", "path \"secret/*\" {\n  policy = \"write\"\n}\n").unwrap();
    let a = Acl::new(&[&legacy]);
    for op in [
        Operation::Create,
        Operation::Read,
        Operation::Update,
        Operation::Delete,
        Operation::List,
    ] {
        assert!(a.check("secret/x", op).allowed, "{op:?}");
    }
    assert!(!a.check("secret/x", Operation::Patch).allowed);
}

fn params(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn param_acl(body: &str) -> Acl {
    let text = format!("path \"a/b\" {{\n  capabilities = [\"create\", \"update\", \"read\", \"delete\"]\n  {body}\n}}\n");
    Acl::new(&[&parse_policy("p", &text).unwrap()])
}

#[test]
fn allowed_parameters_restrict_names_and_values() {
    let a = param_acl(r#"allowed_parameters = { "foo" = [], "bar" = ["zip", "zap*"] }"#);
    let ok = |v: Value| {
        a.check_with_params("a/b", Operation::Update, &params(v))
            .allowed
    };
    assert!(ok(json!({})));
    assert!(ok(json!({"foo": "anything", "bar": "zip"})));
    assert!(ok(json!({"bar": "zappa"})));
    assert!(ok(json!({"bar": ["zip", "zap"]})));
    assert!(ok(json!({"bar": "zip,zap"})));
    assert!(ok(json!({"FOO": 1})), "names compare lower-cased");
    assert!(!ok(json!({"bar": "nope"})));
    assert!(!ok(json!({"bar": ["zip", "nope"]})));
    assert!(!ok(json!({"bar": ""})));
    assert!(!ok(json!({"other": 1})));
    // Without params the constraint is not evaluated; delete is never checked.
    assert!(a.check("a/b", Operation::Update).allowed);
    assert!(
        a.check_with_params("a/b", Operation::Delete, &params(json!({"x": 1})))
            .allowed
    );
}

#[test]
fn allowed_parameters_wildcard_name() {
    let a = param_acl(r#"allowed_parameters = { "*" = [], "bar" = ["zip"] }"#);
    let ok = |v: Value| {
        a.check_with_params("a/b", Operation::Update, &params(v))
            .allowed
    };
    assert!(ok(json!({"anything": 1})));
    assert!(ok(json!({"bar": "zip"})));
    assert!(!ok(json!({"bar": "zap"})));
}

#[test]
fn denied_parameters_beat_allowed() {
    let a = param_acl(
        r#"allowed_parameters = { "*" = [] }
  denied_parameters = { "ttl" = [], "role" = ["admin", 7] }"#,
    );
    let ok = |v: Value| {
        a.check_with_params("a/b", Operation::Create, &params(v))
            .allowed
    };
    assert!(ok(json!({"name": "x", "role": "user"})));
    assert!(!ok(json!({"ttl": "1h"})));
    assert!(!ok(json!({"role": "admin"})));
    assert!(!ok(json!({"role": ["user", "admin"]})));
    assert!(!ok(json!({"role": "user, admin"})));
    assert!(!ok(json!({"role": 7.0})));
    let all = param_acl(r#"denied_parameters = { "*" = [] }"#);
    assert!(
        !all.check_with_params("a/b", Operation::Update, &params(json!({"x": 1})))
            .allowed
    );
    assert!(
        all.check_with_params("a/b", Operation::Update, &params(json!({})))
            .allowed
    );
}

#[test]
fn required_parameters_must_be_present() {
    let a = param_acl(r#"required_parameters = ["name"]"#);
    let ok = |v: Value| {
        a.check_with_params("a/b", Operation::Update, &params(v))
            .allowed
    };
    assert!(ok(json!({"name": "x"})));
    assert!(!ok(json!({})));
    assert!(!ok(json!({"other": "x"})));
}

#[test]
fn parameter_maps_merge_across_policies() {
    let one = parse_policy("one", "path \"a\" {\n  capabilities = [\"update\"]\n  allowed_parameters = { \"k\" = [\"x\"] }\n}\n").unwrap();
    let two = parse_policy("two", "path \"a\" {\n  capabilities = [\"update\"]\n  allowed_parameters = { \"k\" = [\"y\"] }\n}\n").unwrap();
    let a = Acl::new(&[&one, &two]);
    let ok = |v: Value| {
        a.check_with_params("a", Operation::Update, &params(v))
            .allowed
    };
    assert!(ok(json!({"k": "x"})));
    assert!(ok(json!({"k": "y"})));
    assert!(!ok(json!({"k": "z"})));
}

#[test]
fn wrapping_ttl_bounds_require_wrapping() {
    let a = param_acl("min_wrapping_ttl = \"1m\"\n  max_wrapping_ttl = \"1h\"");
    let req = |ttl: Option<u64>| AccessRequest {
        path: "a/b",
        op: Operation::Read,
        params: None,
        wrap_ttl: ttl.map(Duration::from_secs),
    };
    assert!(
        !a.check("a/b", Operation::Read).allowed,
        "unwrapped is denied"
    );
    assert!(a.check_request(&req(Some(300))).allowed);
    assert!(!a.check_request(&req(Some(30))).allowed);
    assert!(!a.check_request(&req(Some(7200))).allowed);
}

#[test]
fn hcl_and_json_forms_are_equivalent() {
    let hcl = parse_policy(
        "h",
        r#"
path "secret/data/app/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/app/" {
  capabilities = ["list"]
}
path "secret/data/app/locked" {
  capabilities = ["deny"]
}
"#,
    )
    .unwrap();
    let json = parse_policy(
        "j",
        r#"{"path": {
            "secret/data/app/*": {"capabilities": ["create", "read", "update"]},
            "secret/metadata/app/": {"capabilities": ["list"]},
            "secret/data/app/locked": {"capabilities": ["deny"]}
        }}"#,
    )
    .unwrap();
    let (h, j) = (Acl::new(&[&hcl]), Acl::new(&[&json]));
    for (path, op) in [
        ("secret/data/app/db", Operation::Read),
        ("secret/data/app/db", Operation::Delete),
        ("secret/data/app/locked", Operation::Read),
        ("secret/metadata/app", Operation::List),
        ("secret/metadata/other", Operation::List),
    ] {
        assert_eq!(h.check(path, op), j.check(path, op), "{path} {op:?}");
    }
    assert!(h.check("secret/data/app/db", Operation::Read).allowed);
    assert!(!h.check("secret/data/app/locked", Operation::Read).allowed);
}

#[test]
fn resultant_acl_lists_exact_and_glob_paths() {
    let a = acl(&[
        ("auth/token/lookup-self", "\"read\""),
        ("cubbyhole/*", "\"read\", \"list\""),
        ("kv/+/x*", "\"deny\""),
    ]);
    let r = a.resultant_acl();
    assert_eq!(r["root"], json!(false));
    assert_eq!(
        r["exact_paths"]["auth/token/lookup-self"]["capabilities"],
        json!(["read"])
    );
    assert_eq!(
        r["glob_paths"]["cubbyhole/"]["capabilities"],
        json!(["list", "read"])
    );
    assert_eq!(r["glob_paths"]["kv/+/x*"]["capabilities"], json!(["deny"]));
}

#[test]
fn acl_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Acl>();
    assert_send_sync::<Policy>();
}
