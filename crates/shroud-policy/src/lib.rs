//! Vault ACL policies for shroud: parsing (HCL and JSON), path matching and capability
//! evaluation, with Vault's semantics.
//!
//! Start with [`parse_policy`], which turns policy text into a [`Policy`]; compile the
//! policies of a token into an [`Acl`] with [`Acl::new`] (once per set of policies, it is
//! `Send + Sync`), then call [`Acl::check`] for every request. [`DEFAULT_POLICY`] is the text
//! of the built-in `default` policy.
//!
//! The language and its precedence rules are Vault's (policies.mdx, `vault/acl.go`): `*` only
//! as the last character, `+` for one path segment, exact patterns beat globs, among globs the
//! single highest-priority match decides, same-pattern rules are unioned across policies,
//! `deny` wins, and no match means denied. `docs/policies.md` describes it for users.

mod acl;
mod capabilities;
mod default_policy;
mod error;
mod policy;
mod syntax;

pub use acl::{AccessRequest, Acl, Decision};
pub use capabilities::{Capabilities, Operation};
pub use default_policy::DEFAULT_POLICY;
pub use error::PolicyError;
pub use policy::{
    normalize_name, parse_policy, PathRule, Policy, MAX_LIST_LEN, MAX_NAME_LEN, MAX_PATTERN_LEN,
    MAX_POLICY_BYTES, MAX_RULES,
};
