//! Capabilities (what a rule grants) and operations (what a request asks for).

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// A set of Vault capabilities, as a bit set.
///
/// `DENY` is special: a rule that carries it grants nothing else, and it overrides every other
/// capability of the same pattern across policies (Vault's "deny wins").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u16);

impl Capabilities {
    /// No capability at all (the result for a path no rule matches).
    pub const NONE: Capabilities = Capabilities(0);
    /// `deny`: overrides everything, including `sudo`.
    pub const DENY: Capabilities = Capabilities(1 << 0);
    /// `create`: POST/PUT on an object that does not exist yet.
    pub const CREATE: Capabilities = Capabilities(1 << 1);
    /// `read`: GET.
    pub const READ: Capabilities = Capabilities(1 << 2);
    /// `update`: POST/PUT on an existing object.
    pub const UPDATE: Capabilities = Capabilities(1 << 3);
    /// `delete`: DELETE.
    pub const DELETE: Capabilities = Capabilities(1 << 4);
    /// `list`: LIST or GET with `?list=true`.
    pub const LIST: Capabilities = Capabilities(1 << 5);
    /// `sudo`: root-protected paths, in addition to the normal capability.
    pub const SUDO: Capabilities = Capabilities(1 << 6);
    /// `patch`: PATCH (Vault >= 1.9).
    pub const PATCH: Capabilities = Capabilities(1 << 7);

    /// Every name Vault's policy language accepts, with its bit, in alphabetical order (the
    /// order `sys/capabilities` answers in: Vault sorts the list before returning it).
    const NAMES: [(&'static str, Capabilities); 8] = [
        ("create", Capabilities::CREATE),
        ("delete", Capabilities::DELETE),
        ("deny", Capabilities::DENY),
        ("list", Capabilities::LIST),
        ("patch", Capabilities::PATCH),
        ("read", Capabilities::READ),
        ("sudo", Capabilities::SUDO),
        ("update", Capabilities::UPDATE),
    ];

    /// True if every capability in `other` is in `self`.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    #[must_use]
    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// True if the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True if the set carries `deny`.
    pub const fn is_deny(self) -> bool {
        self.0 & Capabilities::DENY.0 != 0
    }

    /// The capability spelled `name` in a policy (`"read"`, `"deny"`, ...), if it is one.
    pub fn from_name(name: &str) -> Option<Capabilities> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    /// The names as `sys/capabilities` reports them: sorted alphabetically, and `["deny"]` when
    /// the set carries `deny` or is empty (Vault reports "no capability" as `deny`).
    /// Reporting `["root"]` for a root token is the caller's job.
    pub fn names(self) -> Vec<&'static str> {
        if self.is_deny() || self.is_empty() {
            return vec!["deny"];
        }
        Self::NAMES
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Normalises a set the way Vault stores it: `deny` alone if `deny` is present.
    pub(crate) const fn normalized(self) -> Capabilities {
        if self.is_deny() {
            Capabilities::DENY
        } else {
            self
        }
    }
}

impl BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Capabilities) -> Capabilities {
        self.union(rhs)
    }
}

impl BitOrAssign for Capabilities {
    fn bitor_assign(&mut self, rhs: Capabilities) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| *n)
            .collect();
        write!(f, "Capabilities({})", names.join("|"))
    }
}

/// The logical operation of a request, as Vault derives it from the HTTP verb (and, for
/// POST/PUT, from the backend's existence check: `Create` for a new object, `Update` otherwise).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Operation {
    /// POST/PUT on an object that does not exist.
    Create,
    /// GET.
    Read,
    /// POST/PUT on an existing object (or a backend without an existence check).
    Update,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// LIST, or GET with `?list=true`.
    List,
}

impl Operation {
    /// The capability this operation needs.
    pub const fn capability(self) -> Capabilities {
        match self {
            Operation::Create => Capabilities::CREATE,
            Operation::Read => Capabilities::READ,
            Operation::Update => Capabilities::UPDATE,
            Operation::Patch => Capabilities::PATCH,
            Operation::Delete => Capabilities::DELETE,
            Operation::List => Capabilities::LIST,
        }
    }

    /// Vault's name of the operation (`"create"`, `"read"`, ...), as the audit log writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::List => "list",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_like_sys_capabilities() {
        let c = Capabilities::UPDATE
            | Capabilities::READ
            | Capabilities::CREATE
            | Capabilities::SUDO
            | Capabilities::LIST
            | Capabilities::DELETE
            | Capabilities::PATCH;
        assert_eq!(
            c.names(),
            ["create", "delete", "list", "patch", "read", "sudo", "update"]
        );
    }

    #[test]
    fn deny_and_empty_report_deny() {
        assert_eq!(Capabilities::DENY.names(), ["deny"]);
        assert_eq!((Capabilities::DENY | Capabilities::READ).names(), ["deny"]);
        assert_eq!(Capabilities::NONE.names(), ["deny"]);
    }

    #[test]
    fn set_operations() {
        let rw = Capabilities::READ.union(Capabilities::UPDATE);
        assert!(rw.contains(Capabilities::READ));
        assert!(!rw.contains(Capabilities::READ | Capabilities::LIST));
        assert!(Capabilities::default().is_empty());
        assert_eq!(Capabilities::from_name("patch"), Some(Capabilities::PATCH));
        assert_eq!(Capabilities::from_name("Read"), None);
        assert_eq!(
            (Capabilities::DENY | Capabilities::SUDO).normalized(),
            Capabilities::DENY
        );
        assert_eq!(format!("{rw:?}"), "Capabilities(read|update)");
    }
}
