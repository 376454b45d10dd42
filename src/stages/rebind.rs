//! The late stage: a valid bond, the LAG active where it can be seen, then every VF back to
//! the driver it had.

use super::*;
use crate::config::EswitchMode as ConfEswitch;
use crate::device::net::Kernel;
use crate::device::sysfs::{self, wait_for, Vf};
use crate::kernlog;
use tracing::info;

/// Why a bond is (not yet) right for VF-LAG.
enum BondCheck {
    Valid {
        bond: String,
        mode: String,
    },
    /// May still change (NetworkManager is still enslaving): wait and look again.
    NotYet(String),
    /// Will not fix itself (wrong mode, not a bond): give up now.
    Invalid(String),
}

fn check_bond(
    root: &Root,
    lag: &Lag,
    dev: &Pf,
    net: &mut dyn Net,
) -> Result<BondCheck, StageError> {
    let Some(bond) = master_of(dev, net)? else {
        return Ok(BondCheck::NotYet(format!(
            "{} is not enslaved to a bond",
            dev.name
        )));
    };
    let mode = match sysfs::bond_mode(root, &bond).map_err(dev_err(&dev.name, "read bond mode"))? {
        Some(m) => m,
        None => {
            return Ok(BondCheck::Invalid(format!(
                "{} is enslaved to {bond}, which is not a bond",
                dev.name
            )))
        }
    };
    if !LAG_BOND_MODES.contains(&mode.as_str()) {
        return Ok(BondCheck::Invalid(format!(
            "{bond} is in mode {mode}; VF-LAG needs one of {}",
            LAG_BOND_MODES.join(", ")
        )));
    }
    let mut slaves =
        sysfs::bond_slaves(root, &bond).map_err(dev_err(&dev.name, "read bond slaves"))?;
    slaves.sort();
    let mut pfs: Vec<String> = lag.pfs.iter().map(|p| p.to_string()).collect();
    pfs.sort();
    let extra: Vec<&str> = slaves
        .iter()
        .filter(|s| !pfs.contains(s))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        return Ok(BondCheck::Invalid(format!(
            "{bond} also has {}: VF-LAG needs exactly the LAG's PFs ({}) in the bond",
            extra.join(", "),
            pfs.join(", ")
        )));
    }
    let missing: Vec<&str> = pfs
        .iter()
        .filter(|p| !slaves.contains(p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Ok(BondCheck::NotYet(format!(
            "{bond} does not contain {} yet",
            missing.join(", ")
        )));
    }
    Ok(BondCheck::Valid { bond, mode })
}

/// What can be seen of a device's LAG.
#[derive(Debug, Clone)]
enum LagSeen {
    Active(String),
    /// Not active yet; `authoritative`: debugfs says so (vs. no kernel log line yet).
    Pending {
        authoritative: bool,
        what: String,
    },
    Failed(String),
    Unobservable,
}

/// Device names (PCI addresses on PCI) of this PF and the LAG's other PFs (the kernel reports a
/// LAG on one of them). mlx5 names its debugfs directory after the device name, on any bus.
fn lag_pcis(root: &Root, lag: &Lag, dev: &Pf) -> Vec<String> {
    let mut v: Vec<String> = vec![dev.dev_name.clone()];
    for other in lag.pfs.iter().filter(|p| **p != dev.name) {
        if let Ok(o) = Pf::open(root, other) {
            if !v.contains(&o.dev_name) {
                v.push(o.dev_name);
            }
        }
    }
    v
}

fn observe_lag(root: &Root, dev: &Pf, pcis: &[String]) -> LagSeen {
    for pci in pcis {
        match kernlog::read_debugfs_lag(root, pci) {
            Ok(Some(d)) if d.active => return LagSeen::Active("active".into()),
            Ok(Some(_)) => {
                return LagSeen::Pending {
                    authoritative: true,
                    what: format!("{pci} lag/state: disabled"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(pf = %dev.name, "mlx5 debugfs: {e}"),
        }
    }
    let report = match kernlog::kmsg_lag_report(root) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(pf = %dev.name, "kernel log not readable: {e}");
            return LagSeen::Unobservable;
        }
    };
    // Silence about the LAG means "not yet" only from a driver that logs it: an mlx5 PCI
    // function, or a device of this LAG that logged mlx5's eSwitch or LAG lines under its own
    // name (dev_printk). For any other NIC silence means nothing.
    let mlx5_pci = matches!(dev.pci_ids(), Ok(Some((MLX5_VENDOR, _))));
    if !mlx5_pci && !pcis.iter().any(|p| report.mlx5_format.contains(p)) {
        return LagSeen::Unobservable;
    }
    match pcis.iter().find_map(|p| report.for_pf(p)) {
        // mlx5 (6.x) logs `shared_fdb:1 mode:..` before CREATE_LAG and the single FDB set-up,
        // then `Operation mode is single FDB`, `Can't enable single FDB mode` or `Failed to
        // create LAG`: until one of those, the LAG is being created and may still fail.
        Some(d)
            if matches!(
                d.last_event.kind,
                kernlog::LagEventKind::SharedFdb {
                    shared_fdb: true,
                    ..
                }
            ) =>
        {
            LagSeen::Pending {
                authoritative: false,
                what:
                    "the kernel log shows the LAG being created (shared_fdb:1), not yet its outcome"
                        .into(),
            }
        }
        Some(d) => match &d.state {
            kernlog::LagState::Active { .. } => LagSeen::Active("active (kernel log)".into()),
            kernlog::LagState::Failed { reason, .. } => {
                LagSeen::Failed(format!("{reason:?} ({})", reason.hint()))
            }
        },
        None => LagSeen::Pending {
            authoritative: false,
            what: "no LAG line in the kernel log".into(),
        },
    }
}

/// The late stage for one PF.
pub fn rebind(root: &Root, lag: &Lag, pf: &IfName) -> Result<Report, StageError> {
    // A port that should be in a bond but is not (or is still held) is handed to the stack.
    let bonded = lag.eswitch != ConfEswitch::Legacy || lag.pfs.len() > 1;
    if bonded {
        if let Some(end) =
            crate::hotplug::release_stale_hold(root, lag, pf, crate::bus::DEFAULT_TIMEOUT)
        {
            crate::early::log_release(pf, &end);
        }
    }
    let mut net = Kernel::open().map_err(dev_err(pf, "open netlink"))?;
    // No extension of its own: the units of `before` are never held back beyond its timeout.
    let t = Timeouts {
        budget: Budget::from_env(root, Duration::ZERO),
        ..Timeouts::default()
    };
    rebind_with(root, lag, pf, &mut net, &t)
}

pub fn rebind_with(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    net: &mut dyn Net,
    t: &Timeouts,
) -> Result<Report, StageError> {
    let (dev, lag) = open_paired(root, lag, pf)?;
    let lag = &lag;
    // Binding VFs of a PF whose early stage did not complete would hide that VF-LAG is down.
    if !State::load(root, pf, &dev.handle()).setup_done {
        return Err(StageError::NotBound {
            pf: pf.to_string(),
            reason: format!(
                "the early stage did not complete for {pf} this boot (see `systemctl status vflag@{}`); VF-LAG is degraded",
                pf.unit_instance()
            ),
        });
    }
    // The waits below only read; the lock is taken for the writes, so the two PFs' late
    // stages wait for their bond in parallel and never add up their bounds.
    let mut r = Report {
        pf: pf.to_string(),
        stage: "rebind",
        ..Report::default()
    };
    let start = Instant::now();
    // lag-timeout, or less when the unit ends sooner (vflag-hotplug@ runs this after the set-up,
    // in the same start timeout): the binds after the wait keep BIND_RESERVE.
    let deadline = match t.budget.left() {
        Some(l) => lag.lag_timeout.min(l.saturating_sub(BIND_RESERVE)),
        None => lag.lag_timeout,
    };

    // Plain SR-IOV on one port: no bond and no LAG to wait for.
    if lag.eswitch == ConfEswitch::Legacy && lag.pfs.len() == 1 {
        r.bond = Some("none (legacy, single port)".into());
        return bind_back(root, pf, &dev, t, r);
    }
    let (bond, mode) = wait_for_bond(root, lag, &dev, net, start, deadline)?;
    info!(pf = %pf, step = "bond", bond = %bond, mode = %mode, "bond is valid for VF-LAG");
    r.bond = Some(format!("{bond} {mode}"));
    // A legacy eSwitch has no VF-LAG to wait for.
    if lag.eswitch == ConfEswitch::Legacy {
        r.lag = Some("none (legacy eSwitch)".into());
        return bind_back(root, pf, &dev, t, r);
    }
    let lag_left = deadline.saturating_sub(start.elapsed());
    r.lag = Some(wait_for_lag(
        root, lag, &dev, &bond, lag_left, deadline, t, &mut r,
    )?);
    info!(pf = %pf, step = "lag", state = r.lag.as_deref().unwrap_or(""), "LAG state");
    bind_back(root, pf, &dev, t, r)
}

fn not_bound(pf: &IfName, reason: String) -> StageError {
    StageError::NotBound {
        pf: pf.to_string(),
        reason,
    }
}

/// The bond: wait (bounded by `deadline` from `start`) while it is still being assembled.
fn wait_for_bond(
    root: &Root,
    lag: &Lag,
    dev: &Pf,
    net: &mut dyn Net,
    start: Instant,
    deadline: Duration,
) -> Result<(String, String), StageError> {
    loop {
        match check_bond(root, lag, dev, net)? {
            BondCheck::Valid { bond, mode } => return Ok((bond, mode)),
            BondCheck::Invalid(why) => return Err(not_bound(&dev.name, why)),
            BondCheck::NotYet(why) if start.elapsed() >= deadline => {
                return Err(not_bound(
                    &dev.name,
                    format!("{why} after {:.0} s", start.elapsed().as_secs_f64()),
                ))
            }
            BondCheck::NotYet(_) => std::thread::sleep(sysfs::POLL_INTERVAL),
        }
    }
}

/// LAG activation, where the driver shows it: mlx5 debugfs (authoritative), else the kernel
/// log (a logged failure is final; silence until the bound only warns). Waits at most `left`;
/// `deadline` is the whole bound, for the messages. Returns what `r.lag` says.
#[allow(clippy::too_many_arguments)] // the stage's context, passed down unchanged
fn wait_for_lag(
    root: &Root,
    lag: &Lag,
    dev: &Pf,
    bond: &str,
    left: Duration,
    deadline: Duration,
    t: &Timeouts,
    r: &mut Report,
) -> Result<String, StageError> {
    let pf = &dev.name;
    let pcis = lag_pcis(root, lag, dev);
    t.budget
        .status(&format!("waiting for the LAG of {bond} to become active"));
    let mut last = LagSeen::Unobservable;
    let seen = wait_for("LAG activation", left, || {
        last = observe_lag(root, dev, &pcis);
        Ok(match &last {
            LagSeen::Pending { .. } => None,
            other => Some(other.clone()),
        })
    });
    Ok(match seen {
        Ok(LagSeen::Active(how)) => how,
        Ok(LagSeen::Unobservable) => "not observable".to_string(),
        Ok(LagSeen::Failed(why)) => {
            return Err(not_bound(pf, format!("the kernel could not activate the LAG of {bond}: {why}")))
        }
        Ok(LagSeen::Pending { .. }) => unreachable!("pending is not an answer"),
        Err(DevError::Timeout { .. }) => match last {
            LagSeen::Pending { authoritative: true, what } => {
                return Err(not_bound(pf, format!(
                    "the LAG of {bond} did not become active within {:.0} s ({what}); binding now would leave VF-LAG inactive",
                    deadline.as_secs_f64()
                )))
            }
            LagSeen::Pending { what, .. } => {
                r.warn(format!(
                    "LAG activation not seen within {:.0} s ({what}); binding anyway",
                    deadline.as_secs_f64()
                ));
                "not seen".to_string()
            }
            _ => "not observable".to_string(),
        },
        Err(e) => return Err(dev_err(pf, "wait for LAG")(e)),
    })
}

/// Restore autoprobe, then bind each VF back to the driver it had (under the NIC lock).
fn bind_back(
    root: &Root,
    pf: &IfName,
    dev: &Pf,
    t: &Timeouts,
    mut r: Report,
) -> Result<Report, StageError> {
    let _lock = lock_nic_within(root, dev, t.lock, &t.budget)?;
    let h = dev.handle();
    let st = State::load(root, pf, &h);
    let autoprobe = dev
        .autoprobe()
        .map_err(dev_err(pf, "read sriov_drivers_autoprobe"))?;
    match (st.autoprobe_before, autoprobe) {
        (Some(before), Some(now)) if before != now => {
            dev.set_autoprobe(before)
                .map_err(dev_err(pf, "restore sriov_drivers_autoprobe"))?;
            r.changed = true;
        }
        (None, Some(false)) => {
            r.warn("sriov_drivers_autoprobe is 0 and no record says what it was; left as is".into())
        }
        _ => {}
    }
    let vfs = dev.vfs().map_err(dev_err(pf, "list VFs"))?;
    r.vfs = dev.numvfs().ok().flatten().unwrap_or(vfs.len() as u32);
    t.budget.status(&format!("binding {} VFs back", vfs.len()));
    let mut bound = 0;
    let mut problems = vec![];
    let bind_by = Instant::now() + t.bind; // one bound for all VFs, not one per VF
    for vf in &vfs {
        match bind_one(root, pf, dev, &st, vf, bind_by, t)? {
            Ok(changed) => {
                bound += 1;
                r.changed |= changed;
            }
            Err(problem) => problems.push(problem),
        }
    }
    if vfs.is_empty() && r.vfs > 0 {
        // netdevsim: VFs exist only as representors, there is no device to bind.
        r.warn(format!(
            "{} has {} VFs but no VF devices on bus {}: nothing to bind",
            dev.name, r.vfs, dev.bus
        ));
    } else {
        r.bound = Some(bound);
    }
    if !problems.is_empty() {
        return Err(StageError::Incomplete {
            pf: pf.to_string(),
            problems,
        });
    }
    info!(pf = %pf, step = "done", status = %r.status(), "VFs bound");
    Ok(r)
}

/// Bind one VF back: to the driver it was unbound from, else by bus match (`drivers_probe`).
/// `Ok(Ok(changed))`: it has a driver now (`changed`: bound by this call); `Ok(Err(problem))`:
/// not bound, and why; `Err`: the VF could not be read.
fn bind_one(
    root: &Root,
    pf: &IfName,
    dev: &Pf,
    st: &State,
    vf: &Vf,
    bind_by: Instant,
    t: &Timeouts,
) -> Result<Result<bool, String>, StageError> {
    if vf
        .driver()
        .map_err(dev_err(pf, "read VF driver"))?
        .is_some()
    {
        return Ok(Ok(false));
    }
    let recorded = st
        .vfs
        .iter()
        .find(|x| x.index == vf.index && x.addr == vf.addr)
        .and_then(|x| x.driver.clone());
    let target = match recorded {
        // The record is a file under /run: a driver name from it becomes a /sys path only
        // if it is one plain path component.
        Some(d) if !valid_driver_name(&d) => {
            return Ok(Err(format!(
                "VF {} ({}): {:?} in {} is not a valid driver name; not binding it (delete the file and restart vflag@{} to record it again)",
                vf.index,
                vf.addr,
                d,
                state_path(root, pf).display(),
                pf.unit_instance()
            )));
        }
        Some(d) => Some(d),
        None => sysfs::driver_override(&vf.dir).map_err(dev_err(pf, "read driver_override"))?,
    };
    info!(pf = %pf, step = "bind", vf = vf.index, addr = %vf.addr, driver = target.as_deref().unwrap_or("(bus match)"), "binding VF");
    let res = match &target {
        Some(d) => sysfs::bind(root, &dev.bus, d, &vf.addr),
        None => sysfs::probe(root, &dev.bus, &vf.addr),
    };
    if let Err(e) = res {
        return Ok(Err(format!("VF {} ({}): {e}", vf.index, vf.addr)));
    }
    Ok(
        match t.budget.wait::<_, DevError>(
            &format!("a driver on VF {}", vf.addr),
            left(bind_by),
            || Ok(vf.driver()?.ok_or(0)),
        ) {
            Ok(d) if target.as_ref().is_some_and(|t| *t != d) => Err(format!(
                "VF {} ({}) bound to {d}, expected {}",
                vf.index,
                vf.addr,
                target.as_deref().unwrap_or("")
            )),
            Ok(_) => Ok(true),
            Err(e) => Err(format!("VF {} ({}): {e}", vf.index, vf.addr)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::*;

    #[test]
    fn rebind_binds_each_vf_back_after_a_valid_bond() {
        let (t, devs) = nic(2, None);
        t.driver("pci", "igbvf");
        t.write(&format!("{}/sriov_drivers_autoprobe", devs[0]), "0\n");
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[Some("igbvf"), None]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let r = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs bound, bond0 802.3ad, LAG not observable");
        assert_eq!(
            t.read(&format!("{}/sriov_drivers_autoprobe", devs[0])),
            "1",
            "autoprobe restored"
        );
        let drv = |i: u32| {
            sysfs::link_basename(&t.p(&format!(
                "sys/devices/pci0000:00/0000:37:00.{}/driver",
                2 + i
            )))
            .unwrap()
        };
        assert_eq!(
            drv(0).as_deref(),
            Some("igbvf"),
            "back to the recorded driver"
        );
        assert_eq!(
            drv(1).as_deref(),
            Some("mlx5_core"),
            "never-bound VF: bus match via drivers_probe"
        );
        // Again: nothing to do.
        let again = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!again.changed && again.bound == Some(2));
    }

    /// A driver name from the state file that is not one path component is refused, and no
    /// bind file anywhere is written for it.
    #[test]
    fn rebind_refuses_a_recorded_driver_that_is_not_a_name() {
        let (t, devs) = nic(2, None);
        t.driver("pci", "igbvf");
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        // ../../.. from sys/bus/pci/drivers/ is the root: "bind" there would be a file of it
        let evil = "../../../..";
        std::fs::write(t.p("bind"), "").unwrap();
        state_for_rebind(&t, &[Some(evil), Some("igbvf")]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let e = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        match &e {
            StageError::Incomplete { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert!(
                    problems[0].contains("not a valid driver name"),
                    "{problems:?}"
                );
            }
            e => panic!("{e}"),
        }
        assert_eq!(
            t.read("bind"),
            "",
            "nothing written outside /sys/bus/pci/drivers"
        );
        for bad in ["", ".", "..", "a/b", "x\ny", "a\0b", &"m".repeat(65)] {
            assert!(!valid_driver_name(bad), "{bad:?}");
        }
        for good in ["mlx5_core", "vfio-pci", "igbvf", "ixgbevf"] {
            assert!(valid_driver_name(good), "{good}");
        }
    }

    #[test]
    fn multi_nic_sysconfig_pairs_each_pf_with_its_own_nic() {
        let (t, devs) = nic(0, None);
        let l = two_nic_lag(&t, &["ens3f0", "ens4f0", "ens3f1", "ens4f1"]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs, switchdev, offload on, 2 representors");
        // The late stage takes bond0 over this NIC's two ports as the whole LAG.
        t.bond("bond0", "active-backup", &["ens3f0", "ens3f1"]);
        let r = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.bond.as_deref(), Some("bond0 active-backup"), "{r:?}");
        assert_eq!(r.bound, Some(2));
    }

    #[test]
    fn rebind_legacy_single_port_needs_no_bond() {
        let (t, devs) = nic(2, None);
        t.driver("pci", "igbvf");
        t.write(&format!("{}/sriov_drivers_autoprobe", devs[0]), "0\n");
        state_for_rebind(&t, &[Some("igbvf"), Some("igbvf")]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "igbvf");
        let mut net = FakeNet::new(2);
        let mut one = lag(2);
        one.pfs.truncate(1);
        one.eswitch = ConfEswitch::Legacy;
        let r = rebind_with(&t.root(), &one, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.bound, Some(2), "{r:?}");
        // Two legacy ports still wait for their bond, but not for a LAG.
        let mut two = lag(2);
        two.eswitch = ConfEswitch::Legacy;
        let err = rebind_with(&t.root(), &two, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(err, StageError::NotBound { .. }), "{err}");
    }

    #[test]
    fn rebind_refuses_when_the_early_stage_did_not_complete() {
        let (t, devs) = nic(2, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let err = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            err.to_string().contains("early stage did not complete"),
            "{err}"
        );
        assert!(
            net.writes().is_empty(),
            "nothing changed: {:?}",
            net.writes()
        );
    }

    #[test]
    fn rebind_refuses_without_a_valid_bond() {
        let (t, devs) = nic(2, None);
        state_for_rebind(&t, &[None, None]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let unbound = |t: &Tree| !t.exists("sys/devices/pci0000:00/0000:37:00.2/driver");

        let start = Instant::now();
        let e = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::NotBound { .. }) && e.to_string().contains("not enslaved"),
            "{e}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "bounded by lag_timeout"
        );
        assert!(unbound(&t));

        // balance-rr can never carry VF-LAG: refused at once, even with a long timeout.
        t.bond("bond0", "balance-rr 0", &["ens3f0", "ens3f1"]);
        let mut l = lag(2);
        l.lag_timeout = Duration::from_secs(60);
        let start = Instant::now();
        let e = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("mode balance-rr"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));

        // A third member.
        t.bond("bond0", "active-backup 1", &["ens3f0", "ens3f1", "eno1"]);
        let e = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("also has eno1"), "{e}");

        // Only one PF in it (yet).
        t.bond("bond0", "active-backup 1", &["ens3f0"]);
        let e = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("does not contain ens3f1"), "{e}");
        assert!(unbound(&t));
    }

    #[test]
    fn rebind_waits_for_mlx5_lag_activation() {
        let (t, devs) = nic(1, None);
        t.bond("bond0", "balance-xor 2", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None]);
        t.write("sys/kernel/debug/mlx5/0000:37:00.0/lag/state", "disabled\n");
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1);
        let e = rebind_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            e.to_string().contains("did not become active") && e.to_string().contains("disabled"),
            "{e}"
        );
        assert!(!t.exists("sys/devices/pci0000:00/0000:37:00.2/driver"));

        let p = t.p("sys/kernel/debug/mlx5/0000:37:00.0/lag/state");
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            fs::write(p, "active\n").unwrap();
        });
        let mut l = lag(1);
        l.lag_timeout = Duration::from_secs(5);
        let r = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        h.join().unwrap();
        assert_eq!(r.lag.as_deref(), Some("active"));
        assert_eq!(r.bound, Some(1));
    }

    /// The debugfs directory is named after the device name on any bus (mlx5: dev_name), so a
    /// non-PCI device with the LAG files is waited for too (the test bed's ConnectX model).
    #[test]
    fn rebind_waits_for_the_lag_in_debugfs_of_a_non_pci_device() {
        let t = Tree::new();
        let mut devs = vec![];
        for (name, id) in [("eni10np1", 10), ("eni11np1", 11)] {
            let dev = format!("sys/devices/netdevsim{id}");
            t.write(&format!("{dev}/sriov_numvfs"), "2\n");
            t.link(&format!("{dev}/subsystem"), "sys/bus/netdevsim");
            t.netdev(name, id, Some(&dev));
            devs.push(dev);
        }
        t.bond("bond0", "active-backup 1", &["eni10np1", "eni11np1"]);
        State {
            device: "netdevsim/netdevsim10".into(),
            autoprobe_before: None,
            vfs: vec![],
            setup_done: true,
            port: None,
        }
        .save(&t.root(), &n("eni10np1"))
        .unwrap();
        t.write("sys/kernel/debug/mlx5/netdevsim11/lag/state", "disabled\n");
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "netdevsim");
        let mut net = FakeNet::new(1);
        let mut l = lag(1);
        l.pfs = vec![n("eni10np1"), n("eni11np1")];
        let e = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap_err();
        assert!(
            e.to_string().contains("did not become active")
                && e.to_string().contains("netdevsim11 lag/state: disabled"),
            "{e}"
        );
        t.write("sys/kernel/debug/mlx5/netdevsim11/lag/state", "active\n");
        let r = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("active"));
    }

    #[test]
    fn rebind_reads_the_lag_from_the_kernel_log_without_debugfs() {
        let (t, devs) = nic(1, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1);
        let vf_bound = |t: &Tree| t.exists("sys/devices/pci0000:00/0000:37:00.2/driver");

        // A logged failure is final: no waiting for the bound, no binding.
        t.write(
            "dev/kmsg",
            "3,812,9000000,-;mlx5_core 0000:37:00.0: Failed to create LAG (-22)\n",
        );
        let mut l = lag(1);
        l.lag_timeout = Duration::from_secs(30);
        let start = Instant::now();
        let e = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::NotBound { .. }) && e.to_string().contains("firmware refused"),
            "{e}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!vf_bound(&t));

        // Silence: bounded wait, then bind with a warning (the log is a heuristic).
        t.write("dev/kmsg", "6,1,1000,-;something else\n");
        let r = rebind_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("not seen"));
        assert!(
            r.warnings.iter().any(|w| w.contains("binding anyway")),
            "{:?}",
            r.warnings
        );
        assert!(vf_bound(&t));

        // Activation logged by the pair's first PF counts for the second one too.
        t.write(
            "dev/kmsg",
            "6,900,12000000,-;mlx5_core 0000:37:00.0: lag map port 1:1 port 2:1 shared_fdb:1\n",
        );
        let st = State {
            device: "pci/0000:37:00.1".into(),
            setup_done: true,
            ..State::default()
        };
        st.save(&t.root(), &n("ens3f1")).unwrap();
        let r = rebind_with(&t.root(), &lag(1), &n("ens3f1"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("active (kernel log)"));
    }

    /// Two netdevsim PFs (the test bed's ConnectX model: no PCI vendor, no debugfs visible)
    /// with a completed early stage on eni10np1, and the LAG of both.
    fn netdevsim_pair() -> (Tree, Vec<String>, Lag) {
        let t = Tree::new();
        let mut devs = vec![];
        for (name, id) in [("eni10np1", 10), ("eni11np1", 11)] {
            let dev = format!("sys/devices/netdevsim{id}");
            t.write(&format!("{dev}/sriov_numvfs"), "2\n");
            t.link(&format!("{dev}/subsystem"), "sys/bus/netdevsim");
            t.netdev(name, id, Some(&dev));
            devs.push(dev);
        }
        t.bond("bond0", "active-backup 1", &["eni10np1", "eni11np1"]);
        State {
            device: "netdevsim/netdevsim10".into(),
            setup_done: true,
            ..State::default()
        }
        .save(&t.root(), &n("eni10np1"))
        .unwrap();
        let mut l = lag(1);
        l.pfs = vec![n("eni10np1"), n("eni11np1")];
        (t, devs, l)
    }

    const ESW: &str = "6,700,5000000,-;netdevsim netdevsim10: E-Switch: Enable: mode(OFFLOADS), nvfs(2), necvfs(0), active vports(4)\n";

    /// Without debugfs, a device that logs mlx5's eSwitch/LAG lines under its own dev_printk
    /// name (any bus, any driver) is waited for from the kernel log, as an mlx5 PCI function is:
    /// no line yet is "not yet", `shared_fdb:1` without its outcome is "not yet", the single FDB
    /// line is active, a logged failure is final.
    #[test]
    fn rebind_reads_the_lag_from_the_kernel_log_of_a_non_pci_device() {
        let (t, devs, mut l) = netdevsim_pair();
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "netdevsim");
        let mut net = FakeNet::new(1);

        // eSwitch lines only: the LAG is not logged yet; bounded wait, then a warning.
        t.write("dev/kmsg", ESW);
        let r = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("not seen"));
        assert!(
            r.warnings.iter().any(|w| w.contains("no LAG line")),
            "{:?}",
            r.warnings
        );

        // Map and shared_fdb:1 logged, CREATE_LAG's outcome not yet: still waiting.
        let creating = format!(
            "{ESW}6,701,6000000,-;netdevsim netdevsim10: lag map: port 1:1 port 2:1\n6,702,6000001,-;netdevsim netdevsim10: shared_fdb:1 mode:queue_affinity\n"
        );
        t.write("dev/kmsg", &creating);
        let r = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("not seen"));
        assert!(
            r.warnings.iter().any(|w| w.contains("shared_fdb:1")),
            "{:?}",
            r.warnings
        );

        // The outcome arrives while the stage waits: it binds only then.
        let p = t.p("dev/kmsg");
        let done = format!(
            "{creating}6,703,6300000,-;netdevsim netdevsim10: Operation mode is single FDB\n"
        );
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // replaced whole: a reader never sees a half-written log
            fs::write(p.with_extension("new"), done).unwrap();
            fs::rename(p.with_extension("new"), p).unwrap();
        });
        l.lag_timeout = Duration::from_secs(5);
        let start = Instant::now();
        let r = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap();
        h.join().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(r.lag.as_deref(), Some("active (kernel log)"));

        // CREATE_LAG refused: final at once, nothing bound.
        t.write(
            "dev/kmsg",
            &format!(
                "{creating}3,703,6300000,-;netdevsim netdevsim10: Failed to create LAG (-5)\n"
            ),
        );
        let start = Instant::now();
        let e = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("firmware refused"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    /// A NIC whose driver never logged mlx5's lines stays unobservable: no wait, whatever other
    /// devices (an mlx5 card, a netdevsim) log, and a non-mlx5 PCI NIC likewise.
    #[test]
    fn the_kernel_log_says_nothing_about_a_nic_that_does_not_log_mlx5_lines() {
        let (t, devs, l) = netdevsim_pair();
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "netdevsim");
        let mut net = FakeNet::new(1);
        t.write(
            "dev/kmsg",
            "6,700,5000000,-;netdevsim netdevsim12: E-Switch: Enable: mode(OFFLOADS), nvfs(2), necvfs(0), active vports(4)\n\
             6,701,6000000,-;mlx5_core 0000:37:00.0: lag map: port 1:1 port 2:1\n\
             6,702,6000001,-;netdevsim netdevsim10 eni10np1: renamed from eth0\n",
        );
        let start = Instant::now();
        let r = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("not observable"));
        assert!(start.elapsed() < Duration::from_millis(300));

        let (t, devs) = nic(1, None);
        for d in &devs {
            t.write(&format!("{d}/vendor"), "0x8086\n");
        }
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None]);
        t.write(
            "dev/kmsg",
            "6,1,1000,-;ice 0000:37:00.0: something about the LAG\n",
        );
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "ice");
        let mut l = lag(1);
        l.lag_timeout = Duration::from_secs(5);
        let start = Instant::now();
        let r = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("not observable"));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    /// mlx5 6.x logs the map and `shared_fdb:1` before CREATE_LAG: a refusal can still follow
    /// (`Failed to create LAG`), so only the outcome line counts (seen on the test bed's model:
    /// the VFs were bound in that window before).
    #[test]
    fn rebind_waits_for_the_outcome_after_shared_fdb_on_mlx5() {
        let (t, devs) = nic(1, None);
        t.bond("bond0", "active-backup 1", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1);
        let creating = "6,701,6000000,-;mlx5_core 0000:37:00.0: lag map: port 1:1 port 2:1\n\
                        6,702,6000001,-;mlx5_core 0000:37:00.0: shared_fdb:1 mode:queue_affinity\n";
        t.write("dev/kmsg", creating);
        let r = rebind_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("not seen"));
        t.write(
            "dev/kmsg",
            &format!("{creating}3,703,6300000,-;mlx5_core 0000:37:00.0: mlx5_create_lag:312:(pid 90): Failed to create LAG (-5)\n"),
        );
        let e = rebind_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("firmware refused"), "{e}");
        t.write(
            "dev/kmsg",
            &format!(
                "{creating}6,703,6300000,-;mlx5_core 0000:37:00.0: Operation mode is single FDB\n"
            ),
        );
        let r = rebind_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("active (kernel log)"));
    }
}
