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
mod tests;
