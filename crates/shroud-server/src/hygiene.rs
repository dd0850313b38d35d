//! Process hardening at start: no core dumps, memory locked against swap.

/// Makes the process non-dumpable (no core file, no ptrace by other users) and locks its memory.
/// Returns a human-readable note for each protection that could not be applied.
pub fn harden() -> Vec<String> {
    let mut notes = Vec::new();
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        notes.push(format!(
            "could not disable core dumps (PR_SET_DUMPABLE): {e}"
        ));
    }
    // MCL_ONFAULT locks pages as they are touched instead of faulting in every mapping now, so
    // locking does not inflate resident memory; fall back to plain locking on old kernels.
    use rustix::mm::{mlockall, MlockAllFlags};
    let r = mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT)
        .or_else(|_| mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE));
    if let Err(e) = r {
        notes.push(format!(
            "could not lock memory (mlockall: {e}); secrets could be written to swap \
             (hint: run as root, grant CAP_IPC_LOCK, or disable swap)"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    #[test]
    fn harden_disables_dumping() {
        let _ = super::harden();
        let d = rustix::process::dumpable_behavior().unwrap();
        assert_eq!(d, rustix::process::DumpableBehavior::NotDumpable);
    }
}
