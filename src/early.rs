//! The early stage as its unit runs it (`vflag setup <pf>`): the hold protocol around
//! [`stages::setup`]. The PF must exist (else nothing, the network stack included, is asked) →
//! hold it from the network stack (udev marker + D-Bus, see [`hotplug::stage_start`]) → set it
//! up → release it, on success and on failure alike: a PF left held is a bond that never comes
//! up.

use crate::budget::Budget;
use crate::checks::Outcome;
use crate::config::Lag;
use crate::hotplug;
use crate::names::IfName;
use crate::paths::Root;
use crate::stages::{self, Report, StageError};
use std::time::{Duration, Instant};

/// udevd keeps this file while its event queue is not empty (`udevadm settle` waits on it).
pub const UDEV_QUEUE: &str = "/run/udev/queue";
/// How long a configured PF is still expected once udev's coldplug queue has drained. The PCI
/// functions of a NIC exist before userspace starts; their netdevs appear while udev works
/// through the coldplug events (mlx5_core's probe, firmware wait included, runs inside the
/// modprobe of the PCI device's event, so the queue is not empty before the netdev's own event
/// is queued). The grace covers what that does not: events udevd has not read yet when the unit
/// starts, a driver that registers its netdev after its probe returned. A NIC that comes later
/// is a hot-plug (held and set up when it appears).
pub const COLDPLUG_GRACE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum EarlyError {
    /// The PF's net device is not there; nothing was asked or changed.
    #[error("{0}")]
    Missing(String),
    /// A pre-flight check failed (each failure is in the journal); nothing was changed.
    #[error("{0}")]
    Check(String),
    #[error(transparent)]
    Stage(#[from] StageError),
}

/// What the unit runs, in one process: wait for the PF (as long as it can be expected at boot),
/// the pre-flight checks (`vflag check`'s, as a named step), then [`setup`].
pub fn boot(root: &Root, lag: &Lag, pf: &IfName, budget: &Budget) -> Result<Report, EarlyError> {
    // The wait never eats the unit's own timeout: leave the set-up its margin.
    let upper = budget.left().map_or(lag.device_timeout, |l| {
        lag.device_timeout
            .min(l.saturating_sub(crate::budget::MARGIN))
    });
    match wait_for_pf(root, pf, upper, COLDPLUG_GRACE) {
        Arrival::Present { waited } if waited > POLL => {
            tracing::info!(pf = %pf, step = "wait", "{pf} appeared after {} ms", waited.as_millis())
        }
        Arrival::Present { .. } => {}
        Arrival::Absent { why, .. } => give_up(root, pf, &why)?,
    }
    check(root, lag, pf)?;
    setup(root, lag, pf)
}

/// The pre-flight checks of `vflag check <pf>`, as the set-up's first step.
pub fn check(root: &Root, lag: &Lag, pf: &IfName) -> Result<(), EarlyError> {
    // The process's first line: with the unit's ExecMainStartTimestamp it measures the process
    // start and sandbox set-up (BENCHMARKS.md).
    tracing::info!(pf = %pf, step = "check", "pre-flight checks");
    crate::log::status("checking");
    let cmdline = crate::cmdline::Cmdline::read(root);
    let findings = crate::checks::run(root, &cmdline, &[(lag, pf.clone())], None);
    let count = |o| findings.iter().filter(|f| f.outcome == o).count();
    if crate::checks::report_failures(&findings) {
        let f = findings
            .iter()
            .find(|f| f.outcome == Outcome::Fail)
            .expect("a failure was reported");
        return Err(EarlyError::Check(format!(
            "check {} failed: {} (nothing was changed)",
            f.check, f.detail
        )));
    }
    for f in findings.iter().filter(|f| f.outcome == Outcome::Warn) {
        tracing::warn!(pf = %pf, step = "check", check = f.check, "{}", f.detail);
    }
    tracing::info!(
        pf = %pf,
        step = "check",
        "checks passed ({} pass, {} warn, {} skip)",
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Skip)
    );
    Ok(())
}

/// How the wait for a configured PF ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// The netdev is there and udev has finished with it (or udev is idle).
    Present { waited: Duration },
    /// Not there when udev's coldplug had drained for `grace`, or at `upper` (device-timeout).
    Absent { waited: Duration, why: String },
}

/// Wait for `pf` only as long as it can still be expected at boot: until udev's queue has been
/// empty once (coldplug and its driver probes done), then `grace` more; never longer than `upper` (the LAG's
/// device-timeout, an operator's bound). The unit is ordered after systemd-udev-trigger.service,
/// so every coldplug event has been sent when this starts.
pub fn wait_for_pf(root: &Root, pf: &IfName, upper: Duration, grace: Duration) -> Arrival {
    let start = Instant::now();
    let queue = root.path(UDEV_QUEUE);
    let mut idle_since: Option<(Instant, &str)> = None;
    let mut said = false;
    loop {
        let busy = queue.exists();
        if present(root, pf, busy) {
            return Arrival::Present {
                waited: start.elapsed(),
            };
        }
        let now = Instant::now();
        // Coldplug has finished the first time the queue is seen empty (every coldplug event
        // was sent before this unit started; a NIC's probe runs inside its udev event), or as
        // soon as every NIC of the machine is probed and named: the queue may stay busy long
        // after that with the present PFs' own VFs and representors (14 s in a loaded guest
        // boot, BENCHMARKS.md), which are no NIC a PF could still come from. Neither is undone
        // by later events.
        if idle_since.is_none() {
            if !busy {
                idle_since = Some((now, "coldplug finished"));
            } else if nics_probed(root) {
                idle_since = Some((now, "every NIC probed and named"));
            }
        }
        let waited = start.elapsed();
        if let Some((_, how)) = idle_since.filter(|(t, _)| now.duration_since(*t) >= grace) {
            return Arrival::Absent {
                waited,
                why: format!(
                    "{pf} did not appear while udev probed the machine ({how}, +{} s)",
                    grace.as_secs_f32()
                ),
            };
        }
        if waited >= upper {
            return Arrival::Absent {
                waited,
                why: format!(
                    "{pf} did not appear within device-timeout ({} s)",
                    upper.as_secs_f32()
                ),
            };
        }
        if !said {
            said = true;
            tracing::info!(pf = %pf, step = "wait", "waiting for {pf} (udev coldplug)");
            crate::log::status(&format!("waiting for {pf} (udev coldplug)"));
        }
        std::thread::sleep(POLL.min(upper.saturating_sub(waited)));
    }
}

/// Every NIC the machine has is probed and named, so a PF not among its ports can no longer
/// come from coldplug: each network-class PCI function that is not a VF has a driver bound
/// (the probe, which registers the ports' netdevs, runs inside the modprobe of the device's
/// coldplug event, and the `driver` link comes when it returned), and each port netdev (backed
/// by a device; not a VF, not a representor) has udev's database entry and is not mid-rename.
/// A NIC with no driver keeps this false: then the first empty queue ends the wait, as before.
/// VFs (created unbound by the present PFs' set-ups) and representors are no NIC.
fn nics_probed(root: &Root) -> bool {
    use crate::device::sysfs::{device_of, is_physical_port, list_dir, read_attr};
    let pci = root.path("/sys/bus/pci/devices");
    let unprobed_pci = list_dir(&pci).into_iter().any(|f| {
        let dev = pci.join(f);
        let network = read_attr(&dev.join("class"))
            .ok()
            .flatten()
            .is_some_and(|c| c.starts_with("0x02"));
        network && !dev.join("physfn").exists() && !dev.join("driver").exists()
    });
    if unprobed_pci {
        return false;
    }
    let db = root.path(hotplug::UDEV_DB_DIR);
    let net = root.path("/sys/class/net");
    list_dir(&net).into_iter().all(|name| {
        let dir = net.join(&name);
        let Some(dev) = device_of(&dir) else {
            return true; // bond, bridge, veth, lo: no NIC
        };
        let port = read_attr(&dir.join("phys_port_name")).ok().flatten();
        if dev.join("physfn").exists() || port.is_some_and(|p| !is_physical_port(&p)) {
            return true;
        }
        let Ok(Some(ifindex)) = crate::device::sysfs::netdev_ifindex(root, &name) else {
            return true; // gone since the listing
        };
        udev_done(&db.join(format!("n{ifindex}")))
    })
}

/// udev has finished with a netdev: its database entry exists and is not mid-rename. udev
/// writes the entry with `ID_RENAMING=1` before it renames the netdev, and only the rename's
/// `move` event drops it: until then that event is still to run its rules (the hold rule among
/// them).
fn udev_done(entry: &std::path::Path) -> bool {
    std::fs::read_to_string(entry)
        .is_ok_and(|e| !e.lines().any(|l| l.trim_end() == "E:ID_RENAMING=1"))
}

/// The netdev exists and udev is done with it ([`udev_done`]: the naming and hold rules ran),
/// or udev has nothing queued, or there is no udev database.
fn present(root: &Root, pf: &IfName, udev_busy: bool) -> bool {
    let Ok(Some(ifindex)) = crate::device::sysfs::netdev_ifindex(root, pf.as_str()) else {
        return hotplug::require_pf(root, pf).is_ok() && !udev_busy;
    };
    if !udev_busy || !root.path(hotplug::UDEV_DB_DIR).is_dir() {
        return true;
    }
    udev_done(&root.path(format!("{}/n{ifindex}", hotplug::UDEV_DB_DIR)))
}

/// A PF that was not there at boot: from now on it is a hot-plug. Arm the protocol (udev-import
/// then holds the PF when it appears and wants this unit, failed by then, and its late stage
/// again: set up, handed over, VFs bound back), then look once more, so a PF that came in
/// between is set up here. `Ok(())`: it came after all. (One that comes after this last look
/// and before the unit has failed is handed over unconfigured by `ExecStopPost=vflag
/// setup-end`: degraded, never held.)
pub fn give_up(root: &Root, pf: &IfName, why: &str) -> Result<(), EarlyError> {
    let at_boot = hotplug::booting(crate::bus::DEFAULT_TIMEOUT);
    if let Err(e) = hotplug::mark_absent(root, pf, at_boot) {
        tracing::warn!(pf = %pf, step = "wait", "cannot create {}: {e}; if {pf} appears later it may be bonded before its set-up", root.hotplug_dir().display());
    }
    if hotplug::require_pf(root, pf).is_ok() {
        return Ok(());
    }
    let msg =
        format!("absent: {why}; the boot goes on without it, and it is set up when it appears");
    crate::log::status(&msg);
    Err(EarlyError::Missing(msg))
}

/// The early stage for `pf`, held from the network stack while it runs.
pub fn setup(root: &Root, lag: &Lag, pf: &IfName) -> Result<Report, EarlyError> {
    let at_boot = hotplug::booting(crate::bus::DEFAULT_TIMEOUT);
    held(root, lag, pf, at_boot, crate::bus::DEFAULT_TIMEOUT, || {
        stages::setup(root, lag, pf)
    })
}

/// `set_up` between hold and release (`bus_timeout` bounds each D-Bus exchange); `at_boot`:
/// [`hotplug::booting`].
pub fn held(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    at_boot: bool,
    bus_timeout: Duration,
    set_up: impl FnOnce() -> Result<Report, StageError>,
) -> Result<Report, EarlyError> {
    if let Err(why) = hotplug::require_pf(root, pf) {
        crate::log::status(&format!("failed: {why}"));
        return Err(EarlyError::Missing(why));
    }
    let start = hotplug::stage_start(root, lag, pf, at_boot, bus_timeout);
    tracing::debug!(pf = %pf, step = "hold", at_boot, "{start:?}");
    crate::log::status("setting up");
    let result = set_up();
    let end = hotplug::stage_end(root, lag, pf, bus_timeout);
    log_release(pf, &end);
    let report = result.inspect_err(|e| crate::log::status(&format!("failed: {e}")))?;
    tracing::info!(pf = %pf, step = "done", "{}", report.status());
    crate::log::status(&report.status());
    Ok(report)
}

/// At boot no stack runs yet (the unit is ordered before them): nothing to hand over, and the
/// stack takes the port when it starts. Only a hand-over that was due and failed matters.
pub(crate) fn log_release(pf: &IfName, end: &hotplug::StageEnd) {
    match &end.finish {
        Ok(hotplug::Finish::StillHeld) => tracing::warn!(
            pf = %pf,
            step = "release",
            "udev has not cleared vflag's hold on {pf} yet (busy); the late stage releases it if it is still held then"
        ),
        // Worth a line: the stage waited for it (at boot: an event udev ran for the PF after
        // the set-up began, e.g. the rename's `move`, held it; the benchmark reads this).
        Ok(hotplug::Finish::Released { after }) => tracing::info!(
            pf = %pf,
            step = "release",
            "udev cleared vflag's hold on {pf} after {} ms",
            after.as_millis()
        ),
        Err(e) => tracing::warn!(pf = %pf, step = "release", "udev hold not checked: {e}"),
        Ok(hotplug::Finish::NotHeld) => {}
    }
    match &end.release {
        Ok(crate::bus::Outcome::Skipped(why)) => {
            tracing::debug!(pf = %pf, step = "release", "no hand-over: {why}")
        }
        Ok(o) => tracing::info!(pf = %pf, step = "release", "handed to {:?}: {o:?}", end.stack),
        Err(e) => tracing::warn!(
            pf = %pf,
            step = "release",
            "could not hand {pf} to {:?} ({e}); if the stack is not running yet it takes the port when it starts",
            end.stack
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkStack;

    fn lag() -> Lag {
        let mut l = crate::config::parse_native(&[(
            "/etc/vflag/vflag.conf".into(),
            "[lag bond0]\npfs = ens3f0 ens3f1\n".into(),
        )])
        .plan
        .lags
        .remove(0);
        l.network_stack = NetworkStack::None;
        l
    }

    /// Missing PF: the set-up never runs. Present: held (marker gone) during the set-up and
    /// released (marker written) after it, whether it failed or succeeded.
    #[test]
    fn set_up_runs_between_hold_and_release_even_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let (lag, pf) = (lag(), IfName::new("ens3f0").unwrap());
        let t = Duration::from_millis(200);
        let mut ran = false;
        let e = held(&root, &lag, &pf, false, t, || {
            ran = true;
            Ok(Report::default())
        })
        .unwrap_err();
        assert!(!ran);
        assert!(matches!(&e, EarlyError::Missing(m) if m.contains("no such network interface")));

        let net = dir.path().join("sys/class/net/ens3f0");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("ifindex"), "7\n").unwrap();
        hotplug::finish(&root, &pf, t).unwrap(); // an earlier run finished
        let e = held(&root, &lag, &pf, false, t, || {
            assert!(!hotplug::finished(&root, &pf, Some(7)), "not held");
            Err(StageError::Refused {
                pf: "ens3f0".into(),
                reason: "test".into(),
            })
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "ens3f0: test (nothing was changed)");
        assert!(hotplug::finished(&root, &pf, Some(7)), "not released");

        let r = held(&root, &lag, &pf, false, t, || {
            Ok(Report {
                pf: "ens3f0".into(),
                ..Report::default()
            })
        })
        .unwrap();
        assert_eq!(r.pf, "ens3f0");
        assert!(hotplug::finished(&root, &pf, Some(7)));
    }

    fn netdev(root: &std::path::Path, name: &str, ifindex: u32) {
        let net = root.join(format!("sys/class/net/{name}"));
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("ifindex"), format!("{ifindex}\n")).unwrap();
    }

    /// While udev has events queued the PF is still expected; once the queue has been empty for
    /// the grace it is absent — long before device-timeout (old units: the device job's
    /// full timeout). A netdev udev has not finished with (no database entry) is not yet there.
    #[test]
    fn a_missing_pf_is_waited_for_only_while_coldplug_runs_plus_grace() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let pf = IfName::new("ens3f0").unwrap();
        std::fs::create_dir_all(dir.path().join("run/udev/data")).unwrap();
        let queue = dir.path().join("run/udev/queue");
        std::fs::write(&queue, "").unwrap();
        // a NIC still in its probe (no driver bound): only the queue can end the wait
        nic(dir.path(), "0000:81:00.0", "eth9", 9, None);
        assert!(!nics_probed(&root));
        let upper = Duration::from_secs(30);
        let grace = Duration::from_millis(300);
        // udev busy for 0.6 s, then idle: absent at ~0.6 + 0.3 s, not at 30 s.
        let q = queue.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            std::fs::remove_file(q).unwrap();
        });
        let a = wait_for_pf(&root, &pf, upper, grace);
        t.join().unwrap();
        let Arrival::Absent { waited, why } = a else {
            panic!("{a:?}")
        };
        assert!(waited >= Duration::from_millis(850), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        assert!(why.contains("coldplug"), "{why}");

        // Idle once, then busy again (the present PFs' own VFs and representors): coldplug
        // has finished all the same, the wait ends at the first idle + grace.
        let q = queue.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(q, "").unwrap();
        });
        let a = wait_for_pf(&root, &pf, upper, grace);
        t.join().unwrap();
        assert!(
            matches!(&a, Arrival::Absent { waited, .. } if *waited < Duration::from_secs(2)),
            "{a:?}"
        );
        assert!(queue.exists());

        // Busy and never idle: device-timeout is the upper bound.
        std::fs::write(&queue, "").unwrap();
        let a = wait_for_pf(&root, &pf, Duration::from_millis(400), grace);
        assert!(
            matches!(&a, Arrival::Absent { why, .. } if why.contains("device-timeout")),
            "{a:?}"
        );

        // The netdev exists but udev is still on it (no database entry): not yet; once udev
        // wrote the entry: present.
        netdev(dir.path(), "ens3f0", 7);
        let db = dir.path().join("run/udev/data/n7");
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(db, "E:ID_NET_NAME=ens3f0\n").unwrap();
        });
        let a = wait_for_pf(&root, &pf, upper, grace);
        t.join().unwrap();
        assert!(
            matches!(a, Arrival::Present { waited } if waited >= Duration::from_millis(250)),
            "{a:?}"
        );
    }

    /// A NIC: a PCI function of network class (`driver`: bound), and its port netdev with
    /// udev's database entry (`entry`: its content, `None`: udev has not got to it).
    fn nic(root: &std::path::Path, addr: &str, port: &str, ifindex: u32, entry: Option<&str>) {
        let dev = root.join(format!("sys/bus/pci/devices/{addr}"));
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("class"), "0x020000\n").unwrap();
        netdev(root, port, ifindex);
        std::os::unix::fs::symlink(&dev, root.join(format!("sys/class/net/{port}/device")))
            .unwrap();
        let db = root.join(format!("run/udev/data/n{ifindex}"));
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        match entry {
            Some(e) => std::fs::write(db, e).unwrap(),
            None => drop(std::fs::remove_file(db)),
        }
    }

    /// The queue stays busy with the present PFs' VFs and representors long after coldplug:
    /// the wait ends once every NIC is probed (driver bound) and its ports named (database
    /// entry, not mid-rename), plus the grace. VFs (unbound: the set-up keeps them so),
    /// representors without an entry yet, bonds and other PCI classes do not count.
    #[test]
    fn a_missing_pf_is_not_waited_for_past_the_probe_of_every_nic() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let root = Root::new(d);
        let pf = IfName::new("ens3f0").unwrap();
        std::fs::create_dir_all(d.join("run/udev/data")).unwrap();
        std::fs::write(d.join("run/udev/queue"), "").unwrap(); // busy throughout
        nic(
            d,
            "0000:81:00.0",
            "ens9f0",
            7,
            Some("E:ID_NET_NAME=ens9f0\n"),
        );
        let nic_dev = d.join("sys/bus/pci/devices/0000:81:00.0");
        let drivers = d.join("sys/bus/pci/drivers");
        std::fs::create_dir_all(drivers.join("mlx5_core")).unwrap();
        std::fs::create_dir_all(drivers.join("ixgbe")).unwrap();
        std::os::unix::fs::symlink(drivers.join("mlx5_core"), nic_dev.join("driver")).unwrap();
        // a VF of it, unbound, and its representor (no database entry yet); a bond; a disk
        // controller with no driver
        let vf = d.join("sys/bus/pci/devices/0000:81:00.2");
        std::fs::create_dir_all(&vf).unwrap();
        std::fs::write(vf.join("class"), "0x020000\n").unwrap();
        std::os::unix::fs::symlink(&nic_dev, vf.join("physfn")).unwrap();
        netdev(d, "eth5", 12);
        std::os::unix::fs::symlink(&nic_dev, d.join("sys/class/net/eth5/device")).unwrap();
        std::fs::write(d.join("sys/class/net/eth5/phys_port_name"), "pf0vf0\n").unwrap();
        netdev(d, "bond0", 13);
        let disk = d.join("sys/bus/pci/devices/0000:00:04.0");
        std::fs::create_dir_all(&disk).unwrap();
        std::fs::write(disk.join("class"), "0x010802\n").unwrap();
        assert!(nics_probed(&root));

        // a second NIC whose probe is still running (no driver link yet): still expected
        nic(d, "0000:82:00.0", "eth6", 14, None);
        let probing = d.join("sys/bus/pci/devices/0000:82:00.0");
        assert!(!nics_probed(&root));
        std::os::unix::fs::symlink(drivers.join("ixgbe"), probing.join("driver")).unwrap();
        assert!(!nics_probed(&root), "its port has no database entry yet");
        std::fs::write(d.join("run/udev/data/n14"), "E:ID_RENAMING=1\n").unwrap();
        assert!(!nics_probed(&root), "its port is mid-rename");

        // udev names it 0.4 s later: absent at ~0.4 + grace, not at device-timeout
        let t = std::thread::spawn({
            let d = d.to_path_buf();
            move || {
                std::thread::sleep(Duration::from_millis(400));
                std::fs::write(d.join("run/udev/data/n14"), "E:ID_NET_NAME=ens10f0\n").unwrap();
            }
        });
        let grace = Duration::from_millis(300);
        let a = wait_for_pf(&root, &pf, Duration::from_secs(30), grace);
        t.join().unwrap();
        let Arrival::Absent { waited, why } = a else {
            panic!("{a:?}")
        };
        assert!(waited >= Duration::from_millis(650), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        assert!(why.contains("every NIC probed and named"), "{why}");

        // a NIC that never gets a driver: only the queue or device-timeout ends the wait
        std::fs::remove_file(probing.join("driver")).unwrap();
        let a = wait_for_pf(&root, &pf, Duration::from_millis(600), grace);
        assert!(
            matches!(&a, Arrival::Absent { why, .. } if why.contains("device-timeout")),
            "{a:?}"
        );
    }

    /// udev writes the PF's database entry with ID_RENAMING=1 before it renames the netdev;
    /// the rename's `move` event (the hold rule runs in it) is still to come. The PF is taken
    /// only once that event has rewritten the entry (or udev is idle), never before.
    #[test]
    fn a_pf_mid_rename_is_not_taken_before_udev_has_finished_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let pf = IfName::new("ens3f0").unwrap();
        netdev(dir.path(), "ens3f0", 7);
        let db = dir.path().join("run/udev/data/n7");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::write(&db, "E:ID_NET_NAME=ens3f0\nE:ID_RENAMING=1\n").unwrap();
        std::fs::write(dir.path().join("run/udev/queue"), "").unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(db, "E:ID_NET_NAME=ens3f0\n").unwrap();
        });
        let a = wait_for_pf(&root, &pf, Duration::from_secs(5), Duration::from_secs(3));
        t.join().unwrap();
        assert!(
            matches!(a, Arrival::Present { waited } if waited >= Duration::from_millis(250)),
            "{a:?}"
        );
    }

    /// Giving up arms the protocol, so that the PF's arrival is held and its set-up wanted; a PF
    /// that came in the meantime is set up after all.
    #[test]
    fn giving_up_makes_the_pf_a_held_hot_plug() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let pf = IfName::new("ens3f0").unwrap();
        let e = give_up(&root, &pf, "gone").unwrap_err();
        assert!(e.to_string().contains("absent: gone"), "{e}");
        assert_eq!(
            hotplug::state(&root, &pf, Some(9)),
            hotplug::PfState::Pending,
            "an arrival must be held and its set-up wanted"
        );
        netdev(dir.path(), "ens3f0", 9);
        assert!(give_up(&root, &pf, "gone").is_ok());
    }
}
