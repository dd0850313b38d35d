//! The compiled ACL of a token: all its policies merged, ready for a check per request.
//!
//! Evaluation follows Vault (`vault/acl.go`):
//! - rules with the same pattern are merged across policies (capabilities unioned, `deny`
//!   wins, parameter maps merged, the tighter wrapping TTL kept);
//! - an exact (glob-free) pattern that equals the path wins outright;
//! - otherwise the single highest-priority matching glob decides; there is no union across
//!   different patterns;
//! - nothing matching means denied.
//!
//! Compilation sorts the globs by Vault's priority once, so a check is one hash lookup plus a
//! scan that stops at the first matching glob.

use crate::capabilities::{Capabilities, Operation};
use crate::policy::{PathRule, Policy};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The outcome of an ACL check.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Decision {
    /// The request may proceed.
    pub allowed: bool,
    /// The rule that matched grants `sudo` (root-protected paths need it as well as the
    /// operation's capability). Always true for a root ACL.
    pub sudo: bool,
}

impl Decision {
    const DENIED: Decision = Decision {
        allowed: false,
        sudo: false,
    };
}

/// Everything about a request that a policy can constrain.
#[derive(Clone, Copy, Debug)]
pub struct AccessRequest<'a> {
    /// Request path without leading slash, e.g. `secret/data/app/db`.
    pub path: &'a str,
    /// The logical operation.
    pub op: Operation,
    /// The request's parameters (JSON body, or query for reads). `None` skips parameter
    /// constraints (`allowed_parameters`, `denied_parameters`, `required_parameters`).
    pub params: Option<&'a Map<String, Value>>,
    /// The requested response-wrapping TTL (`X-Vault-Wrap-TTL`), `None` if the response is not
    /// wrapped. Rules with `min_wrapping_ttl`/`max_wrapping_ttl` deny unwrapped requests.
    pub wrap_ttl: Option<Duration>,
}

/// The merged permissions of one pattern.
#[derive(Clone, Debug, Default)]
struct Permissions {
    caps: Capabilities,
    allowed: BTreeMap<String, Vec<Value>>,
    denied: BTreeMap<String, Vec<Value>>,
    required: Vec<String>,
    min_wrap: Option<Duration>,
    max_wrap: Option<Duration>,
}

impl Permissions {
    fn from_rule(rule: &PathRule) -> Self {
        Permissions {
            caps: rule.capabilities(),
            allowed: rule.allowed_parameters().clone(),
            denied: rule.denied_parameters().clone(),
            required: rule.required_parameters().to_vec(),
            min_wrap: rule.min_wrapping_ttl(),
            max_wrap: rule.max_wrapping_ttl(),
        }
    }

    /// Vault's merge of two rules with the same pattern (`NewACL`).
    fn merge(&mut self, rule: &PathRule) {
        if self.caps.is_deny() {
            return;
        }
        if rule.capabilities().is_deny() {
            *self = Permissions {
                caps: Capabilities::DENY,
                ..Permissions::default()
            };
            return;
        }
        self.caps |= rule.capabilities();
        // The smaller of two bounds wins, for min as for max: Vault prefers the shortest
        // lifetime for wrapped tokens.
        self.max_wrap = min_set(self.max_wrap, rule.max_wrapping_ttl());
        self.min_wrap = min_set(self.min_wrap, rule.min_wrapping_ttl());
        merge_params(&mut self.allowed, rule.allowed_parameters());
        merge_params(&mut self.denied, rule.denied_parameters());
        for r in rule.required_parameters() {
            if !self.required.contains(r) {
                self.required.push(r.clone());
            }
        }
    }
}

fn min_set(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An empty value list means "any value" and absorbs the other side; otherwise the lists
/// are concatenated.
fn merge_params(into: &mut BTreeMap<String, Vec<Value>>, from: &BTreeMap<String, Vec<Value>>) {
    for (k, v) in from {
        match into.get_mut(k) {
            Some(existing) if existing.is_empty() || v.is_empty() => existing.clear(),
            Some(existing) => existing.extend(v.iter().cloned()),
            None => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A glob pattern (`*` suffix and/or `+` segments) with its precomputed priority.
#[derive(Debug)]
struct Glob {
    /// The pattern without its trailing `*`.
    stem: Box<str>,
    /// Written with a trailing `*`: a prefix match on the last segment.
    prefix: bool,
    /// The segments of `stem` if it has `+` segments.
    segments: Option<Box<[Box<str>]>>,
    /// The literal text before the first wildcard, a cheap pre-filter.
    literal: Box<str>,
    /// Byte position of the first `+` or `*`.
    first_wildcard: usize,
    /// Number of `+` segments.
    wildcards: usize,
    perms: Permissions,
}

impl Glob {
    fn new(pattern: &str, perms: Permissions) -> Glob {
        let (stem, prefix) = match pattern.strip_suffix('*') {
            Some(s) => (s, true),
            None => (pattern, false),
        };
        let wildcards = stem.split('/').filter(|s| *s == "+").count();
        let segments = (wildcards > 0).then(|| {
            stem.split('/')
                .map(Box::from)
                .collect::<Vec<Box<str>>>()
                .into_boxed_slice()
        });
        // Only a whole `+` segment is a wildcard; `a+b` is literal text.
        let first_plus = if wildcards > 0 {
            let mut pos = 0;
            for seg in stem.split('/') {
                if seg == "+" {
                    break;
                }
                pos += seg.len() + 1;
            }
            Some(pos)
        } else {
            None
        };
        let first_wildcard = first_plus.unwrap_or(stem.len());
        Glob {
            stem: stem.into(),
            prefix,
            segments,
            literal: stem[..first_wildcard].into(),
            first_wildcard,
            wildcards,
            perms,
        }
    }

    /// Vault's priority order (`CheckAllowedFromNonExactPaths`), greatest = preferred:
    /// later first wildcard; then not a prefix over prefix; then fewer `+`; then longer;
    /// then lexicographically greater.
    fn priority_cmp(&self, other: &Glob) -> Ordering {
        self.first_wildcard
            .cmp(&other.first_wildcard)
            .then_with(|| (!self.prefix).cmp(&!other.prefix))
            .then_with(|| Reverse(self.wildcards).cmp(&Reverse(other.wildcards)))
            .then_with(|| self.stem.len().cmp(&other.stem.len()))
            .then_with(|| self.stem.cmp(&other.stem))
    }

    fn matches(&self, path: &str, path_segments: usize) -> bool {
        if !path.starts_with(&*self.literal) {
            return false;
        }
        let Some(segments) = &self.segments else {
            // A plain prefix glob (`secret/*`): the literal is the whole stem.
            return self.prefix;
        };
        if path_segments < segments.len() || (!self.prefix && path_segments != segments.len()) {
            return false;
        }
        let last = segments.len() - 1;
        for (i, (pat, part)) in segments.iter().zip(path.split('/')).enumerate() {
            let ok = &**pat == "+"
                || &**pat == part
                || (self.prefix && i == last && part.starts_with(&**pat));
            if !ok {
                return false;
            }
        }
        true
    }
}

/// A token's compiled access-control list. Cheap to share (`Send + Sync`); build it once per
/// set of policies and call [`Acl::check`] per request.
#[derive(Debug)]
pub struct Acl {
    root: bool,
    exact: HashMap<Box<str>, Permissions>,
    /// Sorted by descending priority: the first match is the one Vault would pick.
    globs: Vec<Glob>,
}

impl Acl {
    /// Compiles the rules of `policies` into one ACL. If any policy is named `root`, the ACL
    /// is a root ACL that allows everything.
    pub fn new(policies: &[&Policy]) -> Acl {
        if policies.iter().any(|p| p.name == "root") {
            return Acl::root();
        }
        let mut exact: HashMap<Box<str>, Permissions> = HashMap::new();
        let mut globs: BTreeMap<&str, Permissions> = BTreeMap::new();
        for policy in policies {
            for rule in policy.rules() {
                if rule.is_templated() {
                    continue;
                }
                let pattern = rule.pattern();
                let is_glob = pattern.ends_with('*') || pattern.split('/').any(|seg| seg == "+");
                if is_glob {
                    match globs.get_mut(pattern) {
                        Some(p) => p.merge(rule),
                        None => {
                            globs.insert(pattern, Permissions::from_rule(rule));
                        }
                    }
                } else {
                    match exact.get_mut(pattern) {
                        Some(p) => p.merge(rule),
                        None => {
                            exact.insert(pattern.into(), Permissions::from_rule(rule));
                        }
                    }
                }
            }
        }
        let mut globs: Vec<Glob> = globs
            .into_iter()
            .map(|(pattern, perms)| Glob::new(pattern, perms))
            .collect();
        globs.sort_by(|a, b| b.priority_cmp(a));
        Acl {
            root: false,
            exact,
            globs,
        }
    }

    /// The ACL of a root token: everything is allowed, with sudo.
    pub fn root() -> Acl {
        Acl {
            root: true,
            exact: HashMap::new(),
            globs: Vec::new(),
        }
    }

    /// True for a root ACL.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The capabilities granted on `path`: `DENY` alone if the deciding rule denies, empty if
    /// no rule matches. Like Vault's `sys/capabilities`, the lookup uses the LIST fallbacks
    /// (a trailing `/` may be dropped). A root ACL reports every capability except `DENY`
    /// (reporting `["root"]` is the caller's job).
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities::CREATE
                | Capabilities::READ
                | Capabilities::UPDATE
                | Capabilities::PATCH
                | Capabilities::DELETE
                | Capabilities::LIST
                | Capabilities::SUDO;
        }
        self.lookup(path, true)
            .map_or(Capabilities::NONE, |p| p.caps.normalized())
    }

    /// Checks an operation on `path` (request path without leading slash, e.g.
    /// `secret/data/app/db`) against capabilities and wrapping-TTL bounds; parameter
    /// constraints are not checked (see [`Acl::check_with_params`]).
    ///
    /// For [`Operation::List`] the path is sanitised to end in `/`, and Vault's LIST rules
    /// apply: an exact rule without the trailing slash also matches, and since Vault 1.15 a
    /// glob matching the path without its trailing slash is preferred.
    pub fn check(&self, path: &str, op: Operation) -> Decision {
        self.check_request(&AccessRequest {
            path,
            op,
            params: None,
            wrap_ttl: None,
        })
    }

    /// [`Acl::check`] plus Vault's parameter constraints (`allowed_parameters`,
    /// `denied_parameters`, `required_parameters`), which apply to read, create, update and
    /// patch. Note Vault's caveat: for KV v2 the values sit under `data`, so only top-level
    /// keys (`data`, `options`) can be constrained.
    pub fn check_with_params(
        &self,
        path: &str,
        op: Operation,
        params: &Map<String, Value>,
    ) -> Decision {
        self.check_request(&AccessRequest {
            path,
            op,
            params: Some(params),
            wrap_ttl: None,
        })
    }

    /// The full check: capabilities, wrapping-TTL bounds and (if `params` is given)
    /// parameter constraints.
    pub fn check_request(&self, req: &AccessRequest<'_>) -> Decision {
        if self.root {
            return Decision {
                allowed: true,
                sudo: true,
            };
        }
        let path: Cow<'_, str> = if req.op == Operation::List && !req.path.ends_with('/') {
            Cow::Owned(format!("{}/", req.path))
        } else {
            Cow::Borrowed(req.path)
        };
        let Some(perms) = self.lookup(&path, req.op == Operation::List) else {
            return Decision::DENIED;
        };
        let caps = perms.caps;
        if caps.is_deny() {
            return Decision::DENIED;
        }
        let sudo = caps.contains(Capabilities::SUDO);
        let denied = Decision {
            allowed: false,
            sudo,
        };
        if !caps.contains(req.op.capability()) {
            return denied;
        }
        if let Some(max) = perms.max_wrap {
            if req.wrap_ttl.is_none_or(|t| t > max) {
                return denied;
            }
        }
        if let Some(min) = perms.min_wrap {
            if req.wrap_ttl.is_none_or(|t| t < min) {
                return denied;
            }
        }
        if let (Some(min), Some(max)) = (perms.min_wrap, perms.max_wrap) {
            // Merging policies can produce this even though one rule cannot.
            if max < min {
                return denied;
            }
        }
        if let Some(params) = req.params {
            let checked = matches!(
                req.op,
                Operation::Read | Operation::Create | Operation::Update | Operation::Patch
            );
            if checked && !params_allowed(perms, params) {
                return denied;
            }
        }
        Decision {
            allowed: true,
            sudo,
        }
    }

    /// Vault's `sys/internal/ui/resultant-acl` view: `{"exact_paths": {...}, "glob_paths":
    /// {...}, "root": bool}`, each path mapping to `{"capabilities": [...]}`. Prefix globs
    /// are keyed without their `*`, as Vault does.
    pub fn resultant_acl(&self) -> Value {
        let entry = |p: &Permissions| {
            let names: Vec<&str> = if p.caps.is_empty() {
                Vec::new()
            } else {
                p.caps.names()
            };
            serde_json::json!({ "capabilities": names })
        };
        let mut exact = Map::new();
        let mut sorted: Vec<_> = self.exact.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (k, p) in sorted {
            exact.insert(k.to_string(), entry(p));
        }
        let mut globs = Map::new();
        for g in &self.globs {
            let key = if g.segments.is_some() && g.prefix {
                format!("{}*", g.stem)
            } else {
                g.stem.to_string()
            };
            globs.insert(key, entry(&g.perms));
        }
        serde_json::json!({ "exact_paths": exact, "glob_paths": globs, "root": self.root })
    }

    /// Finds the permissions that decide `path`. `list` turns on Vault's LIST fallbacks.
    fn lookup(&self, path: &str, list: bool) -> Option<&Permissions> {
        // Defence in depth: Vault strips leading slashes here too.
        let path = path.trim_start_matches('/');
        if let Some(p) = self.exact.get(path) {
            return Some(p);
        }
        if list {
            if let Some(stripped) = path.strip_suffix('/') {
                if let Some(p) = self.exact.get(stripped) {
                    return Some(p);
                }
                // Vault >= 1.15 (PR #23874): check globs against the path without its
                // trailing slash first, so `secret/metadata/app*` covers LIST of
                // `secret/metadata/app/`.
                if let Some(p) = self.glob_lookup(stripped) {
                    return Some(p);
                }
            }
        }
        self.glob_lookup(path)
    }

    fn glob_lookup(&self, path: &str) -> Option<&Permissions> {
        let segments = path.bytes().filter(|&b| b == b'/').count() + 1;
        self.globs
            .iter()
            .find(|g| g.matches(path, segments))
            .map(|g| &g.perms)
    }
}

/// Vault's parameter checks (`AllowOperation`, after the capability check).
fn params_allowed(perms: &Permissions, params: &Map<String, Value>) -> bool {
    for required in &perms.required {
        // Vault looks the lower-cased name up as sent; a differently-cased key misses.
        if !params.contains_key(required) {
            return false;
        }
    }
    if params.is_empty() || (perms.denied.is_empty() && perms.allowed.is_empty()) {
        return true;
    }
    if !perms.denied.is_empty() {
        if perms.denied.contains_key("*") {
            return false;
        }
        for (name, value) in params {
            if let Some(list) = perms.denied.get(&name.to_lowercase()) {
                if value_in_denied(value, list) {
                    return false;
                }
            }
        }
    }
    if perms.allowed.is_empty() {
        return true;
    }
    let allow_all = perms.allowed.contains_key("*");
    if allow_all && perms.allowed.len() == 1 {
        return true;
    }
    for (name, value) in params {
        match perms.allowed.get(&name.to_lowercase()) {
            None if !allow_all => return false,
            Some(list) if !value_in_allowed(value, list) => return false,
            _ => {}
        }
    }
    true
}

/// An empty list allows any value. A list value passes if every element is allowed; a string
/// is also read as a comma-separated list (Vault's `TypeCommaStringSlice` fields).
fn value_in_allowed(v: &Value, list: &[Value]) -> bool {
    if list.is_empty() || value_in_list(v, list) {
        return true;
    }
    match v {
        Value::Array(items) => items.iter().all(|i| value_in_list(i, list)),
        Value::String(s) => {
            // Unlike Vault, an empty string is not vacuously allowed: it must be listed.
            let parts: Vec<&str> = comma_parts(s).collect();
            !parts.is_empty()
                && parts
                    .iter()
                    .all(|p| value_in_list(&Value::String((*p).to_owned()), list))
        }
        _ => false,
    }
}

/// An empty list denies any value. A list value is denied if any element is; a string is also
/// read as a comma-separated list.
fn value_in_denied(v: &Value, list: &[Value]) -> bool {
    if list.is_empty() || value_in_list(v, list) {
        return true;
    }
    match v {
        Value::Array(items) => items.iter().any(|i| value_in_list(i, list)),
        Value::String(s) => {
            comma_parts(s).any(|p| value_in_list(&Value::String(p.to_owned()), list))
        }
        _ => false,
    }
}

fn comma_parts(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

fn value_in_list(v: &Value, list: &[Value]) -> bool {
    list.iter().any(|el| match (el, v) {
        (Value::String(pat), Value::String(s)) => glob_match(pat, s),
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    })
}

/// Vault's `GlobbedStringsMatch`: `*` at the start and/or end of the pattern.
fn glob_match(pattern: &str, s: &str) -> bool {
    if pattern.len() < 2 {
        return pattern == s;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), Some(_)) => s.contains(&rest[..rest.len() - 1]),
        (Some(suffix), None) => s.ends_with(suffix),
        (None, Some(prefix)) => s.starts_with(prefix),
        (None, None) => pattern == s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_glob_string_match() {
        assert!(glob_match("zip", "zip"));
        assert!(!glob_match("zip", "zap"));
        assert!(glob_match("z*", "zap"));
        assert!(glob_match("*p", "zap"));
        assert!(glob_match("*a*", "zap"));
        assert!(glob_match("*", "*"));
        assert!(!glob_match("*", "x"));
        assert!(glob_match("**", "anything"));
    }

    #[test]
    fn glob_priority_key() {
        let g = Glob::new("secret/+/+/foo/*", Permissions::default());
        assert_eq!(g.first_wildcard, 7);
        assert_eq!(g.wildcards, 2);
        assert!(g.prefix);
        assert_eq!(&*g.literal, "secret/");
        let h = Glob::new("secret/*", Permissions::default());
        assert_eq!(h.first_wildcard, 7);
        assert_eq!(h.priority_cmp(&g), Ordering::Greater);
    }

    #[test]
    fn segment_matching() {
        let g = Glob::new("secret/+/foo", Permissions::default());
        let m = |p: &str| g.matches(p, p.split('/').count());
        assert!(m("secret/a/foo"));
        assert!(!m("secret/a/foo/b"));
        assert!(!m("secret/a/food"));
        assert!(!m("secret/foo"));
        let g = Glob::new("secret/+/foo*", Permissions::default());
        let m = |p: &str| g.matches(p, p.split('/').count());
        assert!(m("secret/a/food"));
        assert!(m("secret/a/foo/b/c"));
        assert!(!m("secret/a/fo"));
    }
}
