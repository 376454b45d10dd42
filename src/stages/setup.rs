//! The early stage, as the named steps its journal lines carry (`step=`): [`guards`] (read
//! only) → [`params`] → [`create_vfs`] (`vfs`) → [`unbind_vfs`] (`unbind`) →
//! [`eswitch::switchdev`] (`eswitch`, `representors`) → [`eswitch::ports`] (hw-tc-offload and
//! channels) → [`verify`] → [`hand_over`] (`done`).

use super::eswitch;
use super::state::save;
use super::*;
use crate::config::EswitchMode as ConfEswitch;
use crate::device::devlink::{EswitchMode, Handle};
use crate::device::net::Kernel;
use crate::device::repr::Representor;
use crate::device::sysfs::{self, Vf};
use nix::errno::Errno;
use std::fs;
use tracing::info;

/// What the steps of one early-stage run share.
pub(super) struct Run<'a> {
    pub root: &'a Root,
    pub lag: &'a Lag,
    pub pf: &'a IfName,
    pub dev: Pf,
    pub h: Handle,
    pub t: &'a Timeouts,
    /// VFs asked for.
    pub want: u32,
    pub switchdev: bool,
    pub st: State,
    pub r: Report,
}

/// What the guards read, for the steps after them.
struct Seen {
    numvfs: u32,
    /// The eswitch mode before any change (switchdev LAGs only).
    mode: Option<EswitchMode>,
    /// The PF's ifindex before the eswitch change.
    pf_index: u32,
}

/// The early stage for one PF. See the module documentation for the order.
pub fn setup(root: &Root, lag: &Lag, pf: &IfName) -> Result<Report, StageError> {
    let mut net = Kernel::open().map_err(dev_err(pf, "open netlink"))?;
    setup_with(root, lag, pf, &mut net, &Timeouts::for_unit(root, lag))
}

pub fn setup_with(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    net: &mut dyn Net,
    t: &Timeouts,
) -> Result<Report, StageError> {
    let (dev, lag) = open_paired(root, lag, pf)?;
    let lag = &lag;
    let _lock = lock_nic_within(root, &dev, t.lock, &t.budget)?;
    let h = dev.handle();
    let mut s = Run {
        root,
        lag,
        pf,
        h,
        dev,
        t,
        want: lag.vfs,
        switchdev: lag.eswitch == ConfEswitch::Switchdev,
        st: State::default(),
        r: Report {
            pf: pf.to_string(),
            stage: "setup",
            vfs: lag.vfs,
            ..Report::default()
        },
    };
    info!(pf = %pf, step = "guards", device = %s.h, vfs = s.want, "checking");
    let Some(seen) = guards(&mut s, net)? else {
        return Ok(s.r); // a restart of a configured, enslaved PF: nothing changed
    };
    params(&mut s, net, seen.mode)?;
    representor_names(&s)?;
    // From here on the PF changes: until this run completes, the late stage must not take an
    // earlier run's success for this one.
    if s.st.setup_done {
        s.st.setup_done = false;
        save(&s.st, root, pf)?;
    }
    let vfs = create_vfs(&mut s, seen.numvfs)?;
    unbind_vfs(&mut s, &vfs)?;
    let reps = eswitch::switchdev(&mut s, net)?;
    let mut problems = vec![];
    let offload_all = eswitch::ports(&mut s, net, seen.pf_index, &reps, &mut problems)?;
    verify(&mut s, net, &reps, offload_all, problems)?;
    hand_over(s)
}

/// Read only. `None`: the PF is already configured and enslaved (a restart), nothing to do.
/// Refuses an enslaved PF that is not configured, too many VFs, ports of two NICs and VFs in
/// use by VMs.
fn guards(s: &mut Run, net: &mut dyn Net) -> Result<Option<Seen>, StageError> {
    let (pf, h, want) = (s.pf, &s.h, s.want);
    let numvfs = s
        .dev
        .numvfs()
        .map_err(dev_err(pf, "read sriov_numvfs"))?
        .ok_or_else(|| refused(pf, format!("{h} has no SR-IOV (no sriov_numvfs)")))?;
    let mode = if s.switchdev {
        Some(
            net.eswitch_mode(h)
                .map_err(|e| refused(pf, format!("cannot read the eswitch mode of {h}: {e}")))?,
        )
    } else {
        None
    };
    let pf_index = s.dev.ifindex().map_err(dev_err(pf, "read ifindex"))?;
    s.st = State::load(s.root, pf, h);
    if s.st.port.is_none() {
        s.st.port = Some(s.dev.phys_port_name().ok().flatten().unwrap_or_default());
    }
    if let Some(master) = master_of(&s.dev, net)? {
        let configured = s.st.setup_done
            && numvfs == want
            && (!s.switchdev || mode == Some(EswitchMode::Switchdev));
        if configured {
            s.r.eswitch = Some(mode.map_or("legacy".into(), |m| m.to_string()));
            eswitch::observe(net, &s.dev, s.switchdev, &mut s.r);
            s.r.warn(format!(
                "already set up and enslaved to {master}: nothing changed"
            ));
            return Ok(None);
        }
        return Err(refused(
            pf,
            format!("is enslaved to {master}; changing SR-IOV or the eswitch of a bonded port can be fatal on mlx5"),
        ));
    }
    if let Some(total) = s
        .dev
        .totalvfs()
        .map_err(dev_err(pf, "read sriov_totalvfs"))?
    {
        if want > total {
            return Err(refused(pf, format!("{want} VFs requested but the device offers at most {total} (sriov_totalvfs; firmware NUM_OF_VFS?)")));
        }
    }
    if want > LAG_MAX_VFS {
        s.r.warn(format!(
            "{want} VFs: VF-LAG will not activate with more than {LAG_MAX_VFS} VFs per PF"
        ));
    }
    check_pair(s.root, s.lag, &s.dev, &mut s.r)?;
    // A VF handed to a VM (vfio-pci) means this is a running set-up, not boot: never pull it.
    for vf in s.dev.vfs().map_err(dev_err(pf, "list VFs"))? {
        if vf.driver().ok().flatten().as_deref() == Some(VFIO_DRIVER) {
            return Err(refused(
                pf,
                format!("VF {} ({}) is bound to {VFIO_DRIVER}, i.e. in use by a VM; not touching a running set-up", vf.index, vf.addr),
            ));
        }
    }
    Ok(Some(Seen {
        numvfs,
        mode,
        pf_index,
    }))
}

/// The two PFs of a LAG must be ports of one NIC: same PCI domain:bus:device, other function.
fn check_pair(root: &Root, lag: &Lag, dev: &Pf, report: &mut Report) -> Result<(), StageError> {
    let Some(mine) = dev.pci_addr() else {
        return Ok(()); // not PCI (netdevsim): nothing to compare
    };
    for other in lag.pfs.iter().filter(|p| **p != dev.name) {
        let o = match Pf::open(root, other) {
            Ok(o) => o,
            Err(e) => {
                report.warn(format!("cannot check that {other} is on the same NIC: {e}"));
                continue;
            }
        };
        match o.pci_addr() {
            Some(a) if a.same_slot(&mine) && a.function != mine.function => {}
            Some(_) => {
                return Err(refused(
                    &dev.name,
                    format!(
                        "{} ({}) and {other} ({}) are not two ports of one NIC: VF-LAG needs both ports of the same card",
                        dev.name, dev.dev_name, o.dev_name
                    ),
                ))
            }
            None => report.warn(format!("{other} is not a PCI device; cannot check it shares a NIC with {}", dev.name)),
        }
    }
    Ok(())
}

/// devlink params (`flow_steering_mode`, `lag_port_select_mode`): only in legacy mode, before
/// switchdev; a kernel without the param gets it through NVIDIA OFED's compat sysfs.
fn params(s: &mut Run, net: &mut dyn Net, mode: Option<EswitchMode>) -> Result<(), StageError> {
    let (pf, h, lag) = (s.pf, &s.h, s.lag);
    let params = [
        ("flow_steering_mode", &lag.flow_steering_mode),
        ("lag_port_select_mode", &lag.lag_port_select_mode),
    ];
    for (name, value) in params {
        let Some(value) = value else { continue };
        if mode == Some(EswitchMode::Legacy) {
            info!(pf = %pf, step = "param", param = name, value = %value, "setting devlink param");
            match net.set_param(h, name, value) {
                Ok(Some(old)) => {
                    info!(pf = %pf, step = "param", param = name, "{name}: {old} -> {value}");
                    s.r.changed = true;
                }
                Ok(None) => {}
                // Not a devlink param of this kernel: NVIDIA OFED has it in compat sysfs.
                Err(e)
                    if e.is_kernel(&[Errno::ENOENT, Errno::EINVAL, Errno::EOPNOTSUPP])
                        || matches!(e, DevError::Unsupported(_)) =>
                {
                    let file = sysfs::compat_devlink(s.root, pf, name);
                    match sysfs::read_attr(&file).map_err(dev_err(pf, "compat devlink param"))? {
                        Some(cur) if cur == *value => {}
                        Some(cur) => {
                            info!(pf = %pf, step = "param", param = name, "{name}: {cur} -> {value} via {}", file.display());
                            sysfs::write_attr(&file, value)
                                .map_err(dev_err(pf, "compat devlink param"))?;
                            s.r.changed = true;
                        }
                        None => return Err(dev_err(pf, "devlink param")(e)),
                    }
                }
                Err(e) => return Err(dev_err(pf, "devlink param")(e)),
            }
        } else if s.switchdev {
            s.r.warn(format!("{name}={value} not applied: devlink params are set only in legacy mode, and the eswitch is already {}", mode.map(|m| m.to_string()).unwrap_or_default()));
        }
    }
    Ok(())
}

/// Before any change: representors may appear as soon as the VFs do (mlx5 already in
/// switchdev), and udev names them only if this flag is there.
fn representor_names(s: &Run) -> Result<(), StageError> {
    if s.lag.representor_names {
        let flag = representor_names_flag(s.root);
        fs::write(&flag, "").map_err(|e| StageError::Other {
            pf: s.pf.to_string(),
            msg: format!("cannot write {}: {e}", flag.display()),
        })?;
    }
    Ok(())
}

/// VFs: autoprobe off (recorded first), the count reset to 0 if it is another one, then N;
/// bounded wait for the `virtfn*` links.
pub(super) fn create_vfs(s: &mut Run, numvfs: u32) -> Result<Vec<Vf>, StageError> {
    let (pf, dev, t, want) = (s.pf, &s.dev, s.t, s.want);
    let autoprobe = dev
        .autoprobe()
        .map_err(dev_err(pf, "read sriov_drivers_autoprobe"))?;
    if numvfs != want {
        if s.st.autoprobe_before.is_none() {
            s.st.autoprobe_before = autoprobe;
        }
        // Recorded before it changes: a stage killed in between still knows what to restore.
        save(&s.st, s.root, pf)?;
        if autoprobe == Some(true) && want > 0 {
            dev.set_autoprobe(false)
                .map_err(dev_err(pf, "sriov_drivers_autoprobe"))?;
        }
        if numvfs != 0 {
            info!(pf = %pf, step = "vfs", from = numvfs, to = want, "resetting VF count to 0 first");
            remove_vfs(s, numvfs)?;
        }
        if want > 0 {
            info!(pf = %pf, step = "vfs", vfs = want, "creating VFs");
            t.budget.status(&format!("creating {want} VFs"));
            t.budget
                .during(|| dev.set_numvfs(want))
                .map_err(dev_err(pf, "sriov_numvfs"))?;
        }
        s.r.changed = true;
    }
    if !(dev.is_pci() && want > 0) {
        // netdevsim has no VF devices: only representors.
        return dev.vfs().map_err(dev_err(pf, "list VFs"));
    }
    let mut shown = None;
    t.budget
        .wait(&format!("{want} VF links of {pf}"), t.vfs, || {
            let vfs = dev.vfs()?;
            let k = (0..want)
                .filter(|i| vfs.iter().any(|v| v.index == *i))
                .count() as u64;
            if shown != Some(k) {
                t.budget.status(&format!("creating {want} VFs: {k}/{want}"));
                shown = Some(k);
            }
            Ok(if k == want as u64 { Ok(vfs) } else { Err(k) })
        })
        .map_err(waited(pf, "wait for VFs", HINT_VFS))
}

/// `sriov_numvfs` 0 and a bounded wait for the `numvfs` VFs to go.
pub(super) fn remove_vfs(s: &Run, numvfs: u32) -> Result<(), StageError> {
    let (pf, dev, t) = (s.pf, &s.dev, s.t);
    dev.set_numvfs(0).map_err(dev_err(pf, "sriov_numvfs 0"))?;
    // Removal is synchronous on PCI; the bounded wait covers anything slower.
    t.budget.status(&format!("removing {numvfs} VFs"));
    t.budget
        .wait(&format!("the old VFs of {pf} to go"), t.vfs, || {
            let n = dev.vfs()?.len() as u64;
            Ok(if n == 0 { Ok(()) } else { Err(u64::MAX - n) })
        })
        .map_err(waited(pf, "remove VFs", HINT_VFS))
}

/// Unbind every bound VF, remembering its driver (saved before each unbind). One bound for
/// all of them.
pub(super) fn unbind_vfs(s: &mut Run, vfs: &[Vf]) -> Result<(), StageError> {
    let (pf, t) = (s.pf, s.t);
    let unbind_by = Instant::now() + t.bind;
    for vf in vfs {
        let driver = vf.driver().map_err(dev_err(pf, "read VF driver"))?;
        s.st.record(vf, driver.clone());
        if let Some(d) = driver {
            save(&s.st, s.root, pf)?;
            info!(pf = %pf, step = "unbind", vf = vf.index, addr = %vf.addr, driver = %d, "unbinding VF");
            sysfs::unbind(s.root, &s.dev.bus, &d, &vf.addr).map_err(dev_err(pf, "unbind VF"))?;
            // Unbinding is synchronous on sysfs; the bounded wait only guards odd buses.
            t.budget
                .wait(
                    &format!("{} to leave {d}", vf.addr),
                    left(unbind_by),
                    || {
                        Ok(if vf.driver()?.is_none() {
                            Ok(())
                        } else {
                            Err(0)
                        })
                    },
                )
                .map_err(waited(pf, "unbind VF", HINT_DRIVER))?;
            s.r.changed = true;
        }
    }
    save(&s.st, s.root, pf)
}

/// The end state: N VFs, none bound again, the eswitch mode asked for; with the problems the
/// port step collected, anything wrong makes the run incomplete.
fn verify(
    s: &mut Run,
    net: &mut dyn Net,
    reps: &[Representor],
    offload_all: bool,
    mut problems: Vec<String>,
) -> Result<(), StageError> {
    let (pf, want) = (s.pf, s.want);
    match s.dev.numvfs() {
        Ok(Some(n)) if n == want => {}
        other => problems.push(format!("sriov_numvfs is {other:?}, expected {want}")),
    }
    for vf in s.dev.vfs().map_err(dev_err(pf, "list VFs"))? {
        if let Ok(Some(d)) = vf.driver() {
            problems.push(format!(
                "VF {} ({}) is bound to {d} again",
                vf.index, vf.addr
            ));
        }
    }
    if s.switchdev {
        let m = net
            .eswitch_mode(&s.h)
            .map_err(dev_err(pf, "devlink eswitch show"))?;
        if m != EswitchMode::Switchdev {
            problems.push(format!("eswitch is {m}, expected switchdev"));
        }
        s.r.eswitch = Some(m.to_string());
        s.r.representors = Some(reps.len());
    } else {
        s.r.eswitch = Some("legacy".into());
    }
    s.r.offload = Some(offload_all);
    if !problems.is_empty() {
        return Err(StageError::Incomplete {
            pf: pf.to_string(),
            problems,
        });
    }
    Ok(())
}

/// Mark the set-up done for the late stage.
fn hand_over(mut s: Run) -> Result<Report, StageError> {
    s.st.setup_done = true;
    save(&s.st, s.root, s.pf)?;
    info!(pf = %s.pf, step = "done", status = %s.r.status(), "set-up complete");
    Ok(s.r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::*;

    #[test]
    // Long on purpose: every step of one set-up, checked in the order the stage takes them.
    fn fresh_setup_does_every_step_once_in_order() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        l.flow_steering_mode = Some("smfs".into());
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs, switchdev, offload on, 2 representors");
        assert_eq!(t.read(&format!("{}/sriov_numvfs", devs[0])), "2");
        assert_eq!(
            t.read(&format!("{}/sriov_drivers_autoprobe", devs[0])),
            "0",
            "autoprobe off before creating"
        );
        // VFs were created unbound: nothing to unbind.
        assert_eq!(t.read("sys/bus/pci/drivers/mlx5_core/unbind"), "");
        assert_eq!(
            net.writes(),
            [
                "set param pci/0000:37:00.0 flow_steering_mode=smfs in legacy",
                "set eswitch pci/0000:37:00.0 switchdev",
                "set offload #4 true",
                "set channels #4 63",
                "set offload #50 true",
                "set channels #50 16",
                "set offload #51 true",
                "set channels #51 16",
            ]
        );
        // Ports are read with dumps (before and after the changes), never one by one.
        let reads = |calls: &[String]| -> Vec<String> {
            calls
                .iter()
                .filter(|c| c.starts_with("get") || c.starts_with("dump"))
                .cloned()
                .collect()
        };
        assert_eq!(
            reads(&net.calls),
            [
                "dump offload",
                "dump channels",
                "dump offload",
                "dump channels"
            ]
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("18 combined channels requested, the maximum is 16")),
            "{:?}",
            r.warnings
        );
        let st = State::load(
            &t.root(),
            &n("ens3f0"),
            &Handle {
                bus: "pci".into(),
                dev: "0000:37:00.0".into(),
            },
        );
        assert!(st.setup_done);
        assert_eq!(st.autoprobe_before, Some(true));
        assert_eq!(
            st.vfs
                .iter()
                .map(|v| (v.addr.as_str(), v.driver.clone()))
                .collect::<Vec<_>>(),
            [("0000:37:00.2", None), ("0000:37:00.3", None)]
        );

        // A restart changes nothing and says so.
        let calls = net.calls.len();
        let again = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!again.changed);
        assert!(again.status().ends_with("unchanged"), "{}", again.status());
        let new: Vec<_> = net.calls[calls..]
            .iter()
            .filter(|c| c.starts_with("set"))
            .collect();
        assert!(
            new.iter().all(|c| c.contains("param")) || new.is_empty(),
            "{new:?}"
        );
        // nothing sent, nothing to read back
        assert_eq!(
            reads(&net.calls[calls..]),
            ["dump offload", "dump channels"]
        );
        assert!(again
            .warnings
            .iter()
            .any(|w| w.contains("flow_steering_mode=smfs not applied")));
    }

    /// Firmware that refuses switchdev once VFs exist (ConnectX-6 Lx 26.42.1000): the stage
    /// removes its VFs, sets switchdev, creates them again unbound, and says so.
    #[test]
    fn bound_vfs_are_unbound_from_their_own_driver_and_remembered() {
        let (t, devs) = nic(2, Some("igbvf"));
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "igbvf");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        l.eswitch = ConfEswitch::Legacy;
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs, legacy, offload on");
        assert!(!t.exists(&format!("{}.2/driver", devs[0].rsplit_once('.').unwrap().0)));
        assert!(
            net.calls.iter().all(|c| !c.contains("eswitch")),
            "legacy never touches the eswitch"
        );
        let st = State::load(
            &t.root(),
            &n("ens3f0"),
            &Handle {
                bus: "pci".into(),
                dev: "0000:37:00.0".into(),
            },
        );
        assert_eq!(
            st.vfs
                .iter()
                .map(|v| v.driver.as_deref())
                .collect::<Vec<_>>(),
            [Some("igbvf"), Some("igbvf")]
        );
        assert_eq!(
            st.autoprobe_before, None,
            "VF count unchanged: autoprobe untouched"
        );
    }

    #[test]
    fn other_vf_count_is_reset_to_zero_first() {
        let (t, devs) = nic(3, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(t.read(&format!("{}/sriov_numvfs", devs[0])), "2");
        assert!(
            !t.exists(&format!("{}/virtfn2", devs[0])),
            "the fake kernel saw the 0 and removed the third VF"
        );
    }

    #[test]
    fn enslaved_pf_is_refused_before_any_change() {
        let (t, _) = nic(0, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        let mut net = FakeNet::new(2);
        let err = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(err, StageError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("enslaved to bond0"), "{err}");
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:37:00.0/sriov_numvfs"),
            "0\n"
        );
        // Also when only rtnetlink says so (IFF_SLAVE without a sysfs master link).
        let (t, _) = nic(0, None);
        let mut net = FakeNet::new(2);
        net.slave = true;
        let err = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(err, StageError::Refused { .. }), "{err}");
    }

    #[test]
    fn guards() {
        let (t, _) = nic(0, None);
        let mut net = FakeNet::new(9);
        let e = setup_with(&t.root(), &lag(9), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("at most 8"), "{e}");
        let e = setup_with(&t.root(), &lag(2), &n("ens9"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("not a PF of LAG"), "{e}");
        let mut l = lag(2);
        l.pfs.push(n("ens9"));
        let e = setup_with(&t.root(), &l, &n("ens9"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::Refused { .. }) && e.to_string().contains("does not exist"),
            "{e}"
        );
        // Two PFs on different cards.
        t.pci_pf("ens4f1", "0000:81:00.1", 6, Some(8), 0, None);
        let mut l = lag(2);
        l.pfs = vec![n("ens3f0"), n("ens4f1")];
        let e = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("not two ports of one NIC"), "{e}");
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:37:00.0/sriov_numvfs"),
            "0\n"
        );
    }

    #[test]
    fn vfs_in_use_by_vms_are_never_pulled() {
        let (t, _) = nic(2, Some("mlx5_core"));
        t.driver("pci", "vfio-pci");
        t.link(
            "sys/devices/pci0000:00/0000:37:00.3/driver",
            "sys/bus/pci/drivers/vfio-pci",
        );
        let mut net = FakeNet::new(2);
        let e = setup_with(&t.root(), &lag(3), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::Refused { .. }) && e.to_string().contains("in use by a VM"),
            "{e}"
        );
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:37:00.0/sriov_numvfs"),
            "2\n"
        );
        assert_eq!(t.read("sys/bus/pci/drivers/mlx5_core/unbind"), "");
        assert!(net.writes().is_empty());
    }

    #[test]
    fn more_than_64_vfs_warns() {
        let t = Tree::new();
        let d = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(127), 65, None);
        let _ = d;
        let mut net = FakeNet::new(65);
        let mut l = lag(65);
        l.pfs = vec![n("ens3f0")];
        l.representor_channels = None;
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(
            r.warnings.iter().any(|w| w.contains("more than 64")),
            "{:?}",
            r.warnings
        );
        assert_eq!(r.representors, Some(65));
    }

    #[test]
    fn representor_names_flag_only_when_a_lag_asks_for_them() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!representor_names_flag(&t.root()).exists());
        l.representor_names = true;
        setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(representor_names_flag(&t.root()).exists());
    }

    /// `sriov_drivers_autoprobe` is recorded before it is turned off: when the record cannot be
    /// written, autoprobe is left as it was.
    #[test]
    fn autoprobe_is_recorded_before_it_is_turned_off() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let probe = format!("{}/sriov_drivers_autoprobe", devs[0]);
        assert_eq!(t.read(&probe).trim(), "1");
        // The record's temporary file cannot be created: the first save fails.
        std::fs::create_dir_all(state_path(&t.root(), &n("ens3f0")).with_extension("json.tmp"))
            .unwrap();
        let mut net = FakeNet::new(2);
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("cannot write"), "{e}");
        assert_eq!(
            t.read(&probe).trim(),
            "1",
            "autoprobe untouched without a record"
        );
    }

    #[test]
    fn multi_nic_sysconfig_refuses_a_pf_without_partner_and_changes_nothing() {
        let (t, _) = nic(0, None);
        let l = two_nic_lag(&t, &["ens3f0", "ens3f1", "ens4f0"]);
        let mut net = FakeNet::new(2);
        let e = setup_with(&t.root(), &l, &n("ens4f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(e, StageError::Refused { .. }), "{e}");
        assert!(
            e.to_string().starts_with(
                "ens4f0: no other port of its NIC (0000:3b:00) is listed in SRIOV_PFS"
            ),
            "{e}"
        );
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:3b:00.0/sriov_numvfs"),
            "0\n"
        );
        let e = rebind_with(&t.root(), &l, &n("ens4f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("no other port of its NIC"), "{e}");
        // The other card's ports still pass the pairing (and fail later only for want of VFs).
        let (t2, devs) = nic(0, None);
        let l = two_nic_lag(&t2, &["ens3f0", "ens3f1", "ens4f0"]);
        let _k = FakeKernel::spawn(t2.dir.path(), &devs, "mlx5_core");
        let r = setup_with(&t2.root(), &l, &n("ens3f1"), &mut FakeNet::new(2), &quick());
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn restart_of_an_enslaved_configured_pf_is_a_noop() {
        let (t, _) = nic(2, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None, None]);
        let mut net = FakeNet::new(2);
        net.mode = EswitchMode::Switchdev;
        for f in net.features.values_mut() {
            f.active = true;
        }
        let r = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!r.changed);
        assert_eq!(
            r.status(),
            "2 VFs, switchdev, offload on, 2 representors, unchanged"
        );
        assert!(net.writes().is_empty());
    }

    #[test]
    fn params_fall_back_to_ofed_compat_sysfs_else_fail_with_the_kernel_text() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut l = lag(1);
        l.lag_port_select_mode = Some("hash".into());
        let mut net = FakeNet::new(1);
        net.no_params = true;
        let e = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            e.to_string().contains("Requested parameter does not exist"),
            "{e}"
        );
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read(&format!("{}/sriov_numvfs", devs[0])),
            "0\n",
            "stopped before the VFs"
        );
        let compat = format!("{}/net/ens3f0/compat/devlink/lag_port_select_mode", devs[0]);
        t.write(&compat, "queue_affinity\n");
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(t.read(&compat), "hash");
        assert!(r.changed);
    }
}
