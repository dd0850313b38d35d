//! The built-in `default` policy.

/// The text of the built-in `default` policy, attached to every token unless it is created
/// with `no_default_policy`. It is Vault's default policy restricted to the paths shroud
/// serves: a token may look itself up, renew and revoke itself, ask for its own capabilities
/// and resultant ACL, use its cubbyhole, renew and look up leases, and wrap, look up and
/// unwrap response-wrapping tokens. (Vault's identity-templated entries are left out: shroud
/// has no identity store.) Operators may edit it; it cannot be deleted.
pub const DEFAULT_POLICY: &str = r#"# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}
path "sys/tools/random" {
    capabilities = ["update"]
}
path "sys/tools/random/*" {
    capabilities = ["update"]
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_policy, Acl, Operation};

    #[test]
    fn default_policy_parses_and_grants_self_service() {
        let p = parse_policy("default", DEFAULT_POLICY).unwrap();
        let acl = Acl::new(&[&p]);
        assert!(acl.check("auth/token/lookup-self", Operation::Read).allowed);
        assert!(
            acl.check("auth/token/renew-self", Operation::Update)
                .allowed
        );
        assert!(
            acl.check("sys/capabilities-self", Operation::Update)
                .allowed
        );
        assert!(acl.check("sys/wrapping/unwrap", Operation::Update).allowed);
        assert!(acl.check("cubbyhole/x", Operation::Create).allowed);
        assert!(!acl.check("secret/data/x", Operation::Read).allowed);
        assert!(!acl.check("sys/policy/default", Operation::Update).allowed);
    }
}
