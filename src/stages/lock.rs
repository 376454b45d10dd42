//! The per-NIC lock (`/run/vflag/nic-<dddd:bb:dd>.lock`): both PFs of a card, or a restart,
//! never interleave their writes.

use super::StageError;
use crate::budget::{Budget, Waited};
use crate::device::sysfs::Pf;
use crate::paths::Root;
use nix::fcntl::{Flock, FlockArg};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;
use tracing::info;

/// An exclusive lock for one NIC (both PFs of a card share it), held while a stage runs. The
/// file names its holder (`pid=<pid> unit=<unit>`) so that a waiting stage can say who it waits
/// for; the record is cleared on release.
pub struct NicLock {
    lock: Flock<fs::File>,
    pub path: PathBuf,
}

impl Drop for NicLock {
    fn drop(&mut self) {
        let _ = self.lock.set_len(0);
    }
}

/// The lock file name: the PCI slot (`dddd:bb:dd`) for PCI devices, else the device.
pub fn nic_lock_path(root: &Root, pf: &Pf) -> PathBuf {
    let id = crate::pairing::nic_id(pf);
    root.nic_lock(&id)
}

pub fn lock_nic(root: &Root, pf: &Pf, timeout: Duration) -> Result<NicLock, StageError> {
    lock_nic_within(root, pf, timeout, &Budget::unlimited())
}

/// The unit (or scope) a process runs in, from its cgroup path.
fn unit_of(pid: &str) -> Option<String> {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let last = path.rsplit('/').next()?;
    (last.ends_with(".service") || last.ends_with(".scope")).then(|| last.to_string())
}

/// Who holds the flock on `file`: the holder's own record when /proc/locks confirms it (or
/// cannot be read), else what /proc says of the locking process. `vflag`: the holder is a vflag
/// stage (bounded by its own unit), worth waiting for.
fn lock_holder(path: &std::path::Path) -> (String, bool) {
    use std::os::unix::fs::MetadataExt;
    let record = fs::read_to_string(path).unwrap_or_default();
    let field = |k: &str| {
        record
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(str::to_string)
    };
    let (rpid, runit) = (field("pid="), field("unit="));
    let ino = fs::metadata(path).map(|m| m.ino()).ok();
    let locker = fs::read_to_string("/proc/locks").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // "1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF"; "1: -> FLOCK ..." is a waiter.
            let ok = w.get(1) == Some(&"FLOCK")
                && w.get(5)
                    .and_then(|d| d.rsplit(':').next())
                    .and_then(|i| i.parse::<u64>().ok())
                    == ino;
            ok.then(|| w[4].to_string())
        })
    });
    match (locker, rpid) {
        (Some(l), Some(r)) if l == r => (
            format!("{} (pid {r})", runit.unwrap_or_else(|| "vflag".into())),
            true,
        ),
        (None, Some(r)) => (
            format!("{} (pid {r})", runit.unwrap_or_else(|| "vflag".into())),
            true,
        ),
        (Some(l), _) => {
            // Under the units' sandbox (ProtectProc=invisible, few capabilities) another
            // process's /proc entry is often hidden: then the pid is all there is to say.
            let comm = fs::read_to_string(format!("/proc/{l}/comm"))
                .map(|c| format!(" ({})", c.trim()))
                .unwrap_or_default();
            let unit = unit_of(&l).map(|u| format!(" in {u}")).unwrap_or_default();
            (format!("pid {l}{comm}{unit}"), false)
        }
        (None, None) => ("another process".into(), false),
    }
}

/// Take the NIC lock, waiting at most min(`cap`, the unit's time left). While waiting,
/// `systemctl status` names the holder; a vflag holder is bounded by its own unit, so waiting
/// for it may extend this unit's timeout (up to the ceiling), anything else may not.
pub fn lock_nic_within(
    root: &Root,
    pf: &Pf,
    cap: Duration,
    budget: &Budget,
) -> Result<NicLock, StageError> {
    use std::io::Write as _;
    let pfs = pf.name.to_string();
    let path = nic_lock_path(root, pf);
    let other = |msg: String| StageError::Other {
        pf: pfs.clone(),
        msg,
    };
    fs::create_dir_all(root.run_dir())
        .map_err(|e| other(format!("{}: {e}", root.run_dir().display())))?;
    let open = || {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| other(format!("{}: {e}", path.display())))
    };
    let mut holder = String::new();
    let mut polls = 0;
    let res = budget.wait("the NIC lock", cap, || {
        match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Ok(l)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let (who, vflag) = lock_holder(&path);
                if who != holder {
                    info!(pf = %pf.name, step = "lock", "waiting for the NIC lock held by {who}");
                    budget.status(&format!("waiting for the NIC lock held by {who}"));
                    holder = who;
                }
                polls += 1;
                Ok(Err(if vflag { polls } else { 0 }))
            }
            Err((_, e)) => Err(other(format!("could not lock {}: {e}", path.display()))),
        }
    });
    match res {
        Ok(mut l) => {
            let me = std::process::id();
            let unit = unit_of("self").unwrap_or_else(|| "vflag".into());
            let _ = l.set_len(0);
            let _ = writeln!(&mut *l, "pid={me} unit={unit} pf={}", pf.name);
            Ok(NicLock { lock: l, path })
        }
        Err(Waited::Failed(e)) => Err(e),
        Err(Waited::Expired(e)) => Err(other(format!(
            "could not lock {}: {e}; it is held by {holder} (another stage on this NIC). Check `systemctl status` of that unit; restart this one once it has finished",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::*;

    #[test]
    fn nic_lock_is_shared_by_both_ports() {
        let (t, _) = nic(0, None);
        let root = t.root();
        let other = Pf::open(&root, &n("ens3f1")).unwrap();
        let held = lock_nic(&root, &other, Duration::from_secs(1)).unwrap();
        assert!(held.path.ends_with("nic-0000:37:00.lock"));
        let mut net = FakeNet::new(2);
        let e = setup_with(&root, &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("could not lock"), "{e}");
        assert!(net.calls.is_empty());
        drop(held);
        let me = Pf::open(&root, &n("ens3f0")).unwrap();
        lock_nic(&root, &me, Duration::from_secs(1)).unwrap();
    }

    /// The unit's deadline (not the lock's own cap) ends the wait for a held NIC lock, before
    /// systemd would kill the unit, with an error that names the holder.
    #[test]
    fn lock_wait_ends_before_the_unit_deadline_and_names_the_holder() {
        let (t, _) = nic(0, None);
        let root = t.root();
        let other = Pf::open(&root, &n("ens3f1")).unwrap();
        let held = lock_nic(&root, &other, Duration::from_secs(1)).unwrap();
        let record = fs::read_to_string(&held.path).unwrap();
        assert!(
            record.contains(&format!("pid={}", std::process::id())),
            "{record}"
        );
        let mut tm = quick();
        tm.lock = Duration::from_secs(300);
        let unit = Duration::from_millis(800);
        tm.budget = Budget::with_deadline(crate::budget::MARGIN + unit, Duration::ZERO);
        let started = Instant::now();
        let mut net = FakeNet::new(2);
        let e = setup_with(&root, &lag(2), &n("ens3f0"), &mut net, &tm).unwrap_err();
        let took = started.elapsed();
        assert!(took < unit + Duration::from_millis(500), "{took:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("could not lock") && msg.contains("the unit's start timeout"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("held by vflag (pid {})", std::process::id()))
                || msg.contains(&format!("(pid {})", std::process::id())),
            "{msg}"
        );
        assert!(net.calls.is_empty());
        drop(held);
        assert_eq!(
            fs::read_to_string(nic_lock_path(&root, &other)).unwrap(),
            "",
            "record cleared on release"
        );
    }
}
