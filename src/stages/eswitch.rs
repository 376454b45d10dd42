//! The early stage's eSwitch half: `eswitch` (switchdev) and `representors` in [`switchdev`],
//! the PF after the mode change, hw-tc-offload and channels on every port in [`ports`].

use super::setup::Run;
use super::*;
use crate::device;
use crate::device::devlink::EswitchMode;
use crate::device::ports::{offload, tune_channels, Offload, PortTables};
use crate::device::repr::Representor;
use nix::errno::Errno;
use tracing::info;

/// Switchdev LAGs: the eswitch to switchdev (only if not already, and only with time for it),
/// then a bounded wait for all N representors. Legacy: no representors.
pub(super) fn switchdev(s: &mut Run, net: &mut dyn Net) -> Result<Vec<Representor>, StageError> {
    let (pf, h, t, want) = (s.pf, &s.h, s.t, s.want);
    if !s.switchdev {
        return Ok(vec![]);
    }
    // Re-read: changing the VF count can drop the eswitch back to legacy.
    let now = net
        .eswitch_mode(h)
        .map_err(dev_err(pf, "devlink eswitch show"))?;
    if now != EswitchMode::Switchdev {
        info!(pf = %pf, step = "eswitch", device = %h, from = %now, "setting eswitch mode switchdev");
        // Not started without time for it: a unit killed mid-change leaves the NIC between
        // modes. While it runs (mlx5: up to ~90 s with 60 VFs) the unit's timeout extends.
        t.budget.extend();
        if let Some(l) = t.budget.left().filter(|l| *l < MIN_FOR_ESWITCH) {
            return Err(StageError::Other {
                pf: pf.to_string(),
                msg: format!("eswitch switchdev not started: only {} s left before the unit's start timeout and setup-timeout-max allows no more; raise setup-timeout-max (vflag.conf) and restart vflag@{}", l.as_secs(), pf.unit_instance()),
            });
        }
        t.budget
            .status(&format!("switching eSwitch to switchdev ({want} VFs)"));
        let set = t
            .budget
            .during(|| net.set_eswitch_mode(h, EswitchMode::Switchdev));
        match set {
            Ok(()) => {}
            // Some firmware refuses switchdev once VFs exist (ConnectX-6 Lx 26.42.1000: EINVAL,
            // "Failed setting eswitch to offloads"): the other order may work.
            Err(e) if want > 0 && e.is_kernel(&[Errno::EINVAL]) => switchdev_first(s, net, e)?,
            Err(e) => return Err(dev_err(pf, "devlink eswitch set")(e)),
        }
        s.r.changed = true;
    }
    if want == 0 {
        return Ok(vec![]);
    }
    let mut shown = None;
    let dev = &s.dev;
    let (found, src) = t
        .budget
        .wait(
            &format!("{want} representors of {pf}"),
            t.representors,
            || {
                let (reps, src) = net.representors(dev)?;
                let k = (0..want)
                    .filter(|i| reps.iter().any(|r| r.vf == *i))
                    .count() as u64;
                if shown != Some(k) {
                    t.budget.status(&format!("representors {k}/{want}"));
                    shown = Some(k);
                }
                Ok(if k == want as u64 {
                    Ok((reps, src))
                } else {
                    Err(k)
                })
            },
        )
        .map_err(waited(pf, "representors", HINT_REPS))?;
    info!(pf = %pf, step = "representors", count = found.len(), source = ?src, "found representors");
    Ok(found)
}

/// switchdev was refused with VFs (EINVAL): remove the VFs (vflag's own, unbound: the guards
/// refused a bonded PF and VFs in use by VMs), set switchdev, create them again (autoprobe is
/// still off, so they come up unbound). Said in a warning; if the firmware refuses this order
/// too, the error names both attempts.
fn switchdev_first(
    s: &mut Run,
    net: &mut dyn Net,
    first: crate::device::Error,
) -> Result<(), StageError> {
    let (pf, want) = (s.pf, s.want);
    info!(pf = %pf, step = "eswitch", error = %first, "switchdev refused with {want} VFs; trying switchdev first, then the VFs");
    super::setup::remove_vfs(s, want)?;
    let h = s.h.clone();
    s.t.budget.status(&format!(
        "switching eSwitch to switchdev (0 VFs; refused with {want})"
    ));
    s.t.budget
        .during(|| net.set_eswitch_mode(&h, EswitchMode::Switchdev))
        .map_err(|e| StageError::Other {
            pf: pf.to_string(),
            msg: format!("devlink eswitch set {h} mode switchdev refused with {want} VFs ({first}) and with none ({e}); the VFs are removed, the PF stays legacy; see dmesg (mlx5 E-Switch lines) and the firmware's release notes"),
        })?;
    let vfs = super::setup::create_vfs(s, 0)?;
    super::setup::unbind_vfs(s, &vfs)?;
    s.r.warn(format!("the firmware refused switchdev while the {want} VFs existed ({first}); set switchdev first, then created the VFs: this NIC's firmware needs that order (known: ConnectX-6 Lx firmware 26.42.1000)"));
    Ok(())
}

/// A change requested from a port, to read back.
enum Sent {
    Offload,
    Channels(u32),
}

/// hw-tc-offload and channels on the PF and every representor; collect problems, touch every
/// port. All ports are read with one dump per setting, only the changes are sent (at most the
/// floor's two requests per port), and what was sent is read back the same way. Returns
/// whether offload is on everywhere.
pub(super) fn ports(
    s: &mut Run,
    net: &mut dyn Net,
    pf_index: u32,
    reps: &[Representor],
    problems: &mut Vec<String>,
) -> Result<bool, StageError> {
    let pf_index = pf_ifindex_after_mode_change(net, &s.dev, pf_index, s.t, &mut s.r)?;
    let r = &mut s.r;
    let mut ports = vec![(pf_index, s.pf.to_string(), s.lag.pf_channels)];
    ports.extend(reps.iter().map(|rep| {
        (
            rep.ifindex,
            format!("{} (VF {})", rep.name, rep.vf),
            s.lag.representor_channels,
        )
    }));
    let mut offload_all = true;
    let mut sent = vec![];
    let tune = ports.iter().any(|(_, _, ch)| ch.is_some());
    let before = PortTables::read(net, true, tune);
    for (idx, label, channels) in &ports {
        let now = before.offload(net, *idx);
        match now.and_then(|f| offload(net, *idx, f)) {
            Ok(Offload::On) => {}
            Ok(Offload::Asked) => {
                r.changed = true;
                sent.push((*idx, label, Sent::Offload));
            }
            Ok(Offload::Fixed) => {
                offload_all = false;
                let msg = format!("hw-tc-offload is off on {label} and cannot be changed [fixed]");
                if s.switchdev {
                    problems.push(msg);
                } else {
                    r.warn(msg);
                }
            }
            Err(e) => {
                offload_all = false;
                problems.push(format!("hw-tc-offload on {label}: {e}"));
            }
        }
        if let Some(n) = channels {
            let now = before.channels(net, *idx);
            match tune_channels(net, *idx, now, *n) {
                Ok(out) => {
                    if let Some(w) = out.warning {
                        r.warn(format!("{label}: {w}"));
                    }
                    if let Some(target) = out.sent {
                        r.changed = true;
                        sent.push((*idx, label, Sent::Channels(target)));
                    }
                }
                Err(e) => problems.push(format!("channels on {label}: {e}")),
            }
        }
    }
    if !sent.is_empty() && !read_back(net, &sent, problems) {
        offload_all = false;
    }
    Ok(offload_all)
}

/// Read back what [`ports`] sent, in one dump per setting; false if offload stayed off.
fn read_back(net: &mut dyn Net, sent: &[(u32, &String, Sent)], problems: &mut Vec<String>) -> bool {
    let mut offload_all = true;
    let sent_offload = sent.iter().any(|(_, _, w)| matches!(w, Sent::Offload));
    let sent_channels = sent.iter().any(|(_, _, w)| matches!(w, Sent::Channels(_)));
    let after = PortTables::read(net, sent_offload, sent_channels);
    for (idx, label, what) in sent {
        match what {
            Sent::Offload => match after.offload(net, *idx) {
                Ok(f) if f.active => {}
                Ok(f) => {
                    offload_all = false;
                    problems.push(format!("hw-tc-offload on {label}: asked for on, the device kept it off (wanted={})", f.wanted));
                }
                Err(e) => {
                    offload_all = false;
                    problems.push(format!("hw-tc-offload on {label}: {e}"));
                }
            },
            Sent::Channels(n) => match after.channels(net, *idx) {
                Ok(c) if c.combined == Some(*n) => {}
                Ok(c) => problems.push(format!(
                    "channels on {label}: combined channels are {:?} after setting {n}",
                    c.combined
                )),
                Err(e) => problems.push(format!("channels on {label}: {e}")),
            },
        }
    }
    offload_all
}

/// Read-only look at representors and offload, for the report of a run that changes nothing.
pub(super) fn observe(net: &mut dyn Net, dev: &Pf, switchdev: bool, r: &mut Report) {
    let mut idx = vec![];
    if let Ok(i) = dev.ifindex() {
        idx.push(i);
    }
    if switchdev {
        if let Ok((reps, _)) = net.representors(dev) {
            r.representors = Some(reps.len());
            idx.extend(reps.iter().map(|x| x.ifindex));
        }
    }
    let tables = PortTables::read(net, true, false);
    let on = idx
        .iter()
        .map(|i| tables.offload(net, *i).map(|f| f.active))
        .collect::<device::Result<Vec<bool>>>();
    r.offload = on.ok().map(|v| !v.is_empty() && v.iter().all(|x| *x));
}

/// The PF's ifindex after the eswitch change. mlx5 may re-register the PF netdev as the uplink
/// representor (new ifindex, and udev may rename it, e.g. `ens3f0` -> `ens3f0np0`): keep
/// using the old ifindex while it exists, else find the uplink under the PF's device. Either
/// way the PF must end up with its configured name — vflag's udev rule gives it back
/// (see `naming`) — or the bond config no longer finds it: wait for that (bounded) and fail
/// loudly, before any bond step, if it does not happen.
fn pf_ifindex_after_mode_change(
    net: &mut dyn Net,
    dev: &Pf,
    before: u32,
    t: &Timeouts,
    r: &mut Report,
) -> Result<u32, StageError> {
    let pf = &dev.name;
    let idx = match net.link(before) {
        Ok(_) => before,
        Err(e) if e.is_kernel(&[Errno::ENODEV]) => {
            let (idx, name) = t
                .budget
                .wait(
                    &format!("the uplink netdev of {}", dev.handle()),
                    t.representors,
                    || Ok(dev.uplink()?.ok_or(0)),
                )
                .map_err(waited(pf, "find PF netdev after eswitch change", HINT_REPS))?;
            r.warn(format!(
                "{pf} was re-created by the eswitch change (ifindex {before} -> {idx}, now {name})"
            ));
            idx
        }
        Err(e) => return Err(dev_err(pf, "rtnetlink")(e)),
    };
    let named =
        t.budget
            .wait::<_, DevError>(&format!("{pf} to keep its name"), t.representors, || {
                let l = net.link(idx)?;
                Ok(if l.name == pf.as_str() {
                    Ok(())
                } else {
                    Err(0)
                })
            });
    if named.is_err() {
        let now = net
            .link(idx)
            .map(|l| l.name)
            .unwrap_or_else(|e| format!("? ({e})"));
        return Err(StageError::Incomplete {
            pf: pf.to_string(),
            problems: vec![format!(
                "the eswitch change renamed {pf} to {now}; a bond that names {pf} would not find it. Check that 79-vflag-names.rules is installed (udevadm test /sys/class/net/{now})"
            )],
        });
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::*;

    #[test]
    fn missing_representors_time_out_and_fixed_offload_is_incomplete() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1); // only VF 0's representor ever shows up
        let mut tm = quick();
        tm.representors = Duration::from_millis(300);
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &tm).unwrap_err();
        assert!(e.to_string().contains("2 representors"), "{e}");

        let mut net = FakeNet::new(2);
        net.features.insert(
            51,
            Feature {
                active: false,
                wanted: false,
                changeable: false,
            },
        );
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        match &e {
            StageError::Incomplete { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert!(problems[0].contains("eth1 (VF 1)") && problems[0].contains("[fixed]"));
            }
            e => panic!("{e}"),
        }
        // the other ports were still tuned
        assert!(net.calls.contains(&"set offload #50 true".to_string()));
    }

    #[test]
    fn ports_a_dump_leaves_out_are_asked_alone_and_offload_kept_off_is_incomplete() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        net.undumped = vec![51];
        net.keeps_offload_off = vec![50];
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        match &e {
            StageError::Incomplete { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert!(
                    problems[0].contains("eth0 (VF 0)") && problems[0].contains("kept it off"),
                    "{problems:?}"
                );
            }
            e => panic!("{e}"),
        }
        // the port the dumps missed was read alone, before and after its changes, and tuned
        let alone: Vec<_> = net.calls.iter().filter(|c| c.starts_with("get")).collect();
        assert_eq!(
            alone,
            [
                "get offload #51",
                "get channels #51",
                "get offload #51",
                "get channels #51"
            ]
        );
        assert!(net.calls.contains(&"set offload #51 true".to_string()));
        assert!(net.calls.contains(&"set channels #51 16".to_string()));
    }

    #[test]
    fn channels_are_not_read_when_none_are_configured() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        l.pf_channels = None;
        l.representor_channels = None;
        setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        let reads: Vec<_> = net
            .calls
            .iter()
            .filter(|c| c.starts_with("get") || c.starts_with("dump"))
            .collect();
        assert_eq!(reads, ["dump offload", "dump offload"]);
    }

    /// Representors that never all appear: the wait ends at the unit's deadline (less the
    /// margin), not after its own 60 s cap, with an error saying what it waited for.
    #[test]
    fn representor_wait_ends_at_the_unit_deadline() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1);
        net.mode = EswitchMode::Switchdev; // already: the wait, not the mode change, is tested
        let mut tm = quick();
        tm.representors = Duration::from_secs(60);
        tm.budget = Budget::with_deadline(
            crate::budget::MARGIN + Duration::from_millis(1500),
            Duration::ZERO,
        );
        let started = Instant::now();
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &tm).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let msg = e.to_string();
        assert!(
            msg.contains("gave up waiting for 2 representors of ens3f0")
                && msg.contains("the unit's start timeout")
                && msg.contains("setup-timeout-max"),
            "{msg}"
        );
    }

    #[test]
    fn pf_recreated_by_the_mode_change_is_found_by_its_device() {
        // mlx5 style: the PF netdev comes back as the uplink representor, ifindex 9, named by
        // udev `ens3f0np0` — or `ens3f0` again when vflag's naming rule is installed.
        let recreated = |final_name: &'static str| {
            let (t, devs) = nic(0, None);
            let k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
            let mut net = FakeNet::new(1);
            let off = Feature {
                active: false,
                wanted: false,
                changeable: true,
            };
            net.features.insert(9, off);
            net.channels.insert(9, (8, 63));
            net.names.insert(9, final_name.into());
            let (root, dev) = (t.dir.path().to_path_buf(), devs[0].clone());
            net.on_switchdev = Some(Box::new(move || {
                fs::remove_file(root.join("sys/class/net/ens3f0")).unwrap();
                let nd = root.join(&dev).join("net");
                fs::rename(nd.join("ens3f0"), nd.join("ens3f0np0")).unwrap();
                fs::write(nd.join("ens3f0np0/ifindex"), "9\n").unwrap();
                if final_name == "ens3f0" {
                    fs::rename(nd.join("ens3f0np0"), nd.join("ens3f0")).unwrap();
                    std::os::unix::fs::symlink(
                        nd.join("ens3f0"),
                        root.join("sys/class/net/ens3f0"),
                    )
                    .unwrap();
                }
            }));
            let res = setup_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick());
            drop(k);
            (res, net)
        };
        // Without vflag's naming rule: fail loudly before any bond step.
        let (res, _) = recreated("ens3f0np0");
        let err = res.unwrap_err();
        assert!(
            err.to_string().contains("renamed ens3f0 to ens3f0np0"),
            "{err}"
        );
        // With it, set-up goes on with the new ifindex.
        let (res, net) = recreated("ens3f0");
        let r = res.unwrap();
        assert!(
            net.calls.contains(&"set offload #9 true".to_string()),
            "{:?}",
            net.calls
        );
        assert!(
            !net.calls.iter().any(|c| c.contains("#4 ")),
            "{:?}",
            net.calls
        );
        assert!(
            r.warnings.iter().any(|w| w.contains("re-created")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn firmware_that_wants_switchdev_before_vfs_gets_that_order() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let numvfs = t.dir.path().join(&devs[0]).join("sriov_numvfs");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let log = seen.clone();
        net.refuse_switchdev = Some(Box::new(move || {
            let n = fs::read_to_string(&numvfs).unwrap().trim().to_string();
            log.lock().unwrap().push(n.clone());
            n != "0"
        }));
        let r = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["2", "0"],
            "refused with 2 VFs, then set with 0"
        );
        assert_eq!(r.status(), "2 VFs, switchdev, offload on, 2 representors");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("refused switchdev while the 2 VFs existed")
                    && w.contains("Failed setting eswitch to offloads")),
            "{:?}",
            r.warnings
        );
        assert_eq!(t.read(&format!("{}/sriov_numvfs", devs[0])), "2");
        assert_eq!(t.read(&format!("{}/sriov_drivers_autoprobe", devs[0])), "0");
        assert_eq!(t.read("sys/bus/pci/drivers/mlx5_core/unbind"), "");
        assert!(State::load(&t.root(), &n("ens3f0"), &net_handle()).setup_done);
    }

    /// Refused in both orders: a clear error naming both, the PF legacy, no VFs left half-set.
    #[test]
    fn firmware_refusing_switchdev_in_both_orders_is_named() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        net.refuse_switchdev = Some(Box::new(|| true));
        let err = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        let e = err.to_string();
        assert!(
            e.contains("refused with 2 VFs") && e.contains("and with none"),
            "{e}"
        );
        assert_eq!(net.mode, EswitchMode::Legacy);
        assert!(!State::load(&t.root(), &n("ens3f0"), &net_handle()).setup_done);
    }

    /// Any other eswitch error is not retried: the VFs stay.
    #[test]
    fn other_eswitch_errors_are_not_retried() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        l.vfs = 0;
        net.refuse_switchdev = Some(Box::new(|| true));
        let err = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(err.to_string().contains("devlink eswitch set"), "{err}");
        assert_eq!(
            net.calls
                .iter()
                .filter(|c| c.starts_with("set eswitch"))
                .count(),
            1
        );
    }
}
