//! Judging one PF: its own observation + the config → findings (`present`, `vfs`,
//! `vfs-bound`, `eswitch`, `link`, `pf-offload`, `representors`, `rep-offload`, `pf-channels`,
//! `rep-channels`).

use super::*;
use crate::config::Lag;
use crate::device::devlink::EswitchMode;
use crate::device::ethtool::Channels;
use crate::device::repr::Source;
use crate::stages::LAG_MAX_VFS;

/// The checks of one PF that need nothing but its own observation.
pub fn judge_pf(lag: &Lag, o: &PfObs) -> Vec<Finding> {
    if let Some(why) = &o.missing {
        return vec![bad(
            "present",
            Some(&o.name),
            Outcome::Fail,
            why.clone(),
            "check that the NIC is installed and its driver (mlx5_core) loaded, and the interface name in the config (`vflag plan`); if switchdev renamed it (e.g. ens3f0 -> ens3f0np0, see `journalctl -b -u vflag@*`), pin the PF name with a udev rule on its PCI address",
        )];
    }
    let j = Judge {
        lag,
        o,
        p: Some(&o.name),
        pf: &o.name,
        switchdev: lag.eswitch == ConfEswitch::Switchdev,
        journal: format!("journalctl -b -u {}", o.name.early_unit()),
    };
    let mut out = vec![j.vfs(), j.eswitch(), j.pf_offload()];
    out.extend(j.representors());
    out.extend(j.pf_channels());
    out.push(j.link());
    out.push(judge_vfs_bound(o));
    out
}

/// One PF's observation against its LAG's config; one method per check.
struct Judge<'a> {
    lag: &'a Lag,
    o: &'a PfObs,
    p: Option<&'a IfName>,
    pf: &'a IfName,
    switchdev: bool,
    /// `journalctl -b -u vflag@<pf>.service`, for hints.
    journal: String,
}

impl Judge<'_> {
    /// `vfs`: VFs created (sriov_numvfs against the config, at most LAG_MAX_VFS for VF-LAG).
    fn vfs(&self) -> Finding {
        let (o, p, pf, switchdev, journal) =
            (self.o, self.p, self.pf, self.switchdev, &self.journal);
        let want = self.lag.vfs;
        match &o.numvfs {
            Err(e) => bad("vfs", p, Outcome::Fail, format!("cannot read sriov_numvfs: {e}"), format!("see {journal}")),
            Ok(None) => bad(
                "vfs",
                p,
                Outcome::Fail,
                format!("{} has no SR-IOV (no sriov_numvfs)", o.handle),
                "enable SR-IOV in the BIOS and the firmware (mlxconfig -d <device> set SRIOV_EN=1 NUM_OF_VFS=<n>), then reboot",
            ),
            Ok(Some(n)) if *n == want => {
                let links = o.vfs.as_ref().map(|v| v.len()).unwrap_or(0);
                let mut d = format!("{n} VFs (sriov_numvfs), {want} configured");
                if o.pci.is_some() && links as u32 != *n {
                    d.push_str(&format!("; {links} virtfn links"));
                }
                if switchdev && *n > LAG_MAX_VFS {
                    bad("vfs", p, Outcome::Warn, format!("{d}: VF-LAG does not activate with more than {LAG_MAX_VFS} VFs per PF"), format!("configure at most {LAG_MAX_VFS} VFs per PF"))
                } else {
                    pass("vfs", p, d)
                }
            }
            Ok(Some(n)) => bad(
                "vfs",
                p,
                Outcome::Fail,
                format!("{n} VFs (sriov_numvfs), {want} configured"),
                format!("the early stage creates them before the PF joins the bond: see `systemctl status {}` and `{journal}`, fix the cause and reboot", pf.early_unit()),
            ),
        }
    }

    /// `eswitch`: the mode (devlink, else OFED's compat sysfs) against the config.
    fn eswitch(&self) -> Finding {
        let (o, p, journal, lag) = (self.o, self.p, &self.journal, self.lag);
        match (&o.eswitch, lag.eswitch) {
            (Ok((EswitchMode::Switchdev, src)), ConfEswitch::Switchdev) => {
                pass("eswitch", p, format!("switchdev ({src} {})", o.handle))
            }
            (Ok((m, src)), ConfEswitch::Switchdev) => bad(
                "eswitch",
                p,
                Outcome::Fail,
                format!("{m} ({src} {}), switchdev configured", o.handle),
                format!("the early stage sets switchdev before the PF joins the bond (devlink dev eswitch set {} mode switchdev): see `{journal}`, fix the cause and reboot", o.handle),
            ),
            (Err(e), ConfEswitch::Switchdev) => bad(
                "eswitch",
                p,
                Outcome::Fail,
                format!("cannot read the eswitch mode of {}: {e}", o.handle),
                "VF-LAG needs devlink (kernel with devlink, a driver that supports switchdev, run as root)",
            ),
            (Ok((EswitchMode::Legacy, src)), ConfEswitch::Legacy) => {
                pass("eswitch", p, format!("legacy ({src} {}), as configured", o.handle))
            }
            (Ok((m, src)), ConfEswitch::Legacy) => bad(
                "eswitch",
                p,
                Outcome::Warn,
                format!("{m} ({src} {}), legacy configured (vflag leaves it alone)", o.handle),
                "set eswitch = switchdev in the config if VF-LAG is wanted; else something else changed the mode",
            ),
            (Err(e), ConfEswitch::Legacy) => skip(
                "eswitch",
                p,
                format!("not observable ({e}); legacy configured"),
            ),
        }
    }

    /// `pf-offload`: hw-tc-offload on the PF.
    fn pf_offload(&self) -> Finding {
        let (o, p, pf, switchdev, journal) =
            (self.o, self.p, self.pf, self.switchdev, &self.journal);
        let off_outcome = if switchdev {
            Outcome::Fail
        } else {
            Outcome::Warn
        };
        match &o.port.offload {
            Ok(f) if f.active => pass("pf-offload", p, "hw-tc-offload on"),
            Ok(f) if f.changeable => bad(
                "pf-offload",
                p,
                off_outcome,
                "hw-tc-offload off",
                format!("ethtool -K {pf} hw-tc-offload on (the early stage does this at boot: see `{journal}`)"),
            ),
            Ok(_) => bad(
                "pf-offload",
                p,
                off_outcome,
                "hw-tc-offload off [fixed]: the driver does not offer it in this mode",
                "TC offload needs a driver and eswitch mode that support it (mlx5 in switchdev mode)",
            ),
            Err(e) => bad(
                "pf-offload",
                p,
                Outcome::Warn,
                format!("hw-tc-offload not observable: {e}"),
                format!("check by hand: ethtool -k {pf} | grep hw-tc-offload"),
            ),
        }
    }

    /// `representors` (switchdev: one per VF), with `rep-offload` and `rep-channels`.
    fn representors(&self) -> Vec<Finding> {
        let (o, p, pf, switchdev, journal, lag) = (
            self.o,
            self.p,
            self.pf,
            self.switchdev,
            &self.journal,
            self.lag,
        );
        let mut out = vec![];
        if switchdev {
            // Counted against the VFs that exist (the vfs row judges the count itself).
            let n = match &o.numvfs {
                Ok(Some(n)) => *n,
                _ => 0,
            };
            match &o.reps {
                Err(e) => out.push(bad(
                    "representors",
                    p,
                    Outcome::Fail,
                    format!("cannot list representors: {e}"),
                    format!("see `{journal}`"),
                )),
                Ok((reps, src)) => {
                    let src = match src {
                        Source::Devlink => "devlink ports",
                        Source::Sysfs => "sysfs",
                    };
                    let missing: Vec<String> = (0..n)
                        .filter(|i| !reps.iter().any(|r| r.vf == Some(*i)))
                        .map(|i| i.to_string())
                        .collect();
                    out.push(if n == 0 {
                    skip("representors", p, "no VFs, no representors")
                } else if missing.is_empty() {
                    pass("representors", p, format!("{} representors for {n} VFs ({src})", reps.len()))
                } else {
                    bad(
                        "representors",
                        p,
                        Outcome::Fail,
                        format!("{} representors for {n} VFs ({src}); none for VF {}", reps.len(), missing.join(", ")),
                        format!("representors exist only in switchdev mode: see the eswitch row and `{journal}`"),
                    )
                });
                    if !reps.is_empty() {
                        out.push(judge_rep_offload(pf, reps));
                    }
                    if let Some(c) = lag.representor_channels {
                        if !reps.is_empty() {
                            out.push(judge_rep_channels(pf, reps, c));
                        }
                    }
                }
            }
        } else {
            out.push(skip(
                "representors",
                p,
                "legacy eswitch configured: no representors",
            ));
        }
        out
    }

    /// `pf-channels`, if configured.
    fn pf_channels(&self) -> Option<Finding> {
        let (o, p, pf) = (self.o, self.p, self.pf);
        let want = self.lag.pf_channels?;
        Some(match &o.port.channels {
            Err(e) => bad(
                "pf-channels",
                p,
                Outcome::Warn,
                format!("channels not observable: {e}"),
                format!("check by hand: ethtool -l {pf}"),
            ),
            Ok(ch) => {
                let (outcome, detail, fix) = channels_verdict(ch, want);
                finding(
                    "pf-channels",
                    p,
                    outcome,
                    detail,
                    fix.map(|t| format!("ethtool -L {pf} combined {t}")),
                )
            }
        })
    }

    /// `link`: the seed's `ip link show` (UP, LOWER_UP) as operstate.
    fn link(&self) -> Finding {
        let (o, p, pf) = (self.o, self.p, self.pf);
        match o.operstate.as_deref() {
            Some("up") => pass("link", p, "operstate up"),
            None | Some("unknown") => skip("link", p, "operstate not reported"),
            Some(s) => bad(
                "link",
                p,
                Outcome::Warn,
                format!("operstate {s}: this port carries no traffic"),
                format!("check the cable, transceiver and switch port of {pf}; `ip link set {pf} up` if it was set down"),
            ),
        }
    }
}

fn judge_rep_offload(pf: &IfName, reps: &[PortObs]) -> Finding {
    let p = Some(pf);
    let off: Vec<&PortObs> = reps
        .iter()
        .filter(|r| matches!(&r.offload, Ok(f) if !f.active))
        .collect();
    let unknown: Vec<String> = reps
        .iter()
        .filter_map(|r| {
            r.offload
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", r.label()))
        })
        .collect();
    if !off.is_empty() {
        let names: Vec<String> = off.iter().map(|r| r.label()).collect();
        let fixable: Vec<String> = off
            .iter()
            .filter(|r| matches!(&r.offload, Ok(f) if f.changeable))
            .map(|r| format!("ethtool -K {} hw-tc-offload on", r.name))
            .collect();
        let hint = if fixable.is_empty() {
            "hw-tc-offload is [fixed] off on these representors: check the driver".to_string()
        } else {
            fixable.join("; ")
        };
        return bad(
            "rep-offload",
            p,
            Outcome::Fail,
            format!(
                "hw-tc-offload off on {} of {} representors: {}",
                off.len(),
                reps.len(),
                names.join(", ")
            ),
            hint,
        );
    }
    if !unknown.is_empty() {
        return bad(
            "rep-offload",
            p,
            Outcome::Warn,
            format!(
                "hw-tc-offload not observable on {} of {} representors ({})",
                unknown.len(),
                reps.len(),
                unknown[0]
            ),
            "check by hand: ethtool -k <representor> | grep hw-tc-offload",
        );
    }
    pass(
        "rep-offload",
        p,
        format!("hw-tc-offload on on all {} representors", reps.len()),
    )
}

/// (outcome, detail, the count to set when it is wrong).
fn channels_verdict(ch: &Channels, want: u32) -> (Outcome, String, Option<u32>) {
    let Some(max) = ch.combined_max.filter(|m| *m > 0) else {
        return (
            Outcome::Skip,
            "no combined channels on this device".into(),
            None,
        );
    };
    let target = want.min(max);
    let cur = ch
        .combined
        .map(|c| c.to_string())
        .unwrap_or_else(|| "none".into());
    if ch.combined == Some(target) {
        if want > max {
            (
                Outcome::Pass,
                format!("{target} combined channels: the maximum ({want} configured)"),
                None,
            )
        } else {
            (
                Outcome::Pass,
                format!("{target} combined channels, as configured"),
                None,
            )
        }
    } else {
        (
            Outcome::Warn,
            format!("{cur} combined channels, {want} configured (maximum {max})"),
            Some(target),
        )
    }
}

fn judge_rep_channels(pf: &IfName, reps: &[PortObs], want: u32) -> Finding {
    let p = Some(pf);
    let mut wrong = vec![];
    let mut fixes = vec![];
    let mut unknown = 0;
    let mut clamped = None;
    for r in reps {
        match &r.channels {
            Ok(ch) => {
                let (o, detail, fix) = channels_verdict(ch, want);
                if o == Outcome::Warn {
                    wrong.push(format!("{}: {detail}", r.label()));
                }
                if let Some(t) = fix {
                    fixes.push(format!("ethtool -L {} combined {t}", r.name));
                }
                if o == Outcome::Pass && ch.combined_max.is_some_and(|m| m < want) {
                    clamped = ch.combined_max;
                }
            }
            Err(_) => unknown += 1,
        }
    }
    if !wrong.is_empty() {
        return bad(
            "rep-channels",
            p,
            Outcome::Warn,
            format!(
                "{} of {} representors: {}",
                wrong.len(),
                reps.len(),
                wrong.join("; ")
            ),
            fixes.join("; "),
        );
    }
    if unknown == reps.len() {
        let e = reps[0].channels.as_ref().err().cloned().unwrap_or_default();
        return bad(
            "rep-channels",
            p,
            Outcome::Warn,
            format!("channels not observable: {e}"),
            "check by hand: ethtool -l <representor>",
        );
    }
    let mut d = format!(
        "{want} combined channels on {} representors",
        reps.len() - unknown
    );
    if let Some(m) = clamped {
        d = format!(
            "{m} combined channels (the maximum; {want} configured) on {} representors",
            reps.len() - unknown
        );
    }
    if unknown > 0 {
        d.push_str(&format!("; {unknown} not observable"));
    }
    pass("rep-channels", p, d)
}

fn judge_vfs_bound(o: &PfObs) -> Finding {
    let p = Some(&o.name);
    let vfs = match &o.vfs {
        Err(e) => {
            return bad(
                "vfs-bound",
                p,
                Outcome::Warn,
                format!("cannot list VFs: {e}"),
                "ls -l /sys/class/net/<pf>/device/virtfn*",
            )
        }
        Ok(v) => v,
    };
    if vfs.is_empty() {
        return skip(
            "vfs-bound",
            p,
            match o.numvfs {
                Ok(Some(n)) if n > 0 => {
                    format!("{n} VFs but no VF devices on this bus: nothing to bind")
                }
                _ => "no VFs".into(),
            },
        );
    }
    let unbound: Vec<&VfObs> = vfs.iter().filter(|v| v.driver.is_none()).collect();
    let mut drivers: std::collections::BTreeMap<&str, usize> = Default::default();
    for v in vfs {
        if let Some(d) = &v.driver {
            *drivers.entry(d.as_str()).or_default() += 1;
        }
    }
    let by_driver = drivers
        .iter()
        .map(|(d, n)| format!("{d}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if unbound.is_empty() {
        return pass(
            "vfs-bound",
            p,
            format!("{}/{} VFs bound ({by_driver})", vfs.len(), vfs.len()),
        );
    }
    let list: Vec<String> = unbound
        .iter()
        .map(|v| format!("VF {} ({})", v.index, v.addr))
        .collect();
    bad(
        "vfs-bound",
        p,
        Outcome::Fail,
        format!("{}/{} VFs bound; no driver on {}", vfs.len() - unbound.len(), vfs.len(), list.join(", ")),
        format!(
            "the late stage binds them once the bond is valid and the LAG active: see `systemctl status {0}` and `journalctl -b -u {0}`, then `systemctl restart {0}`",
            o.name.late_unit()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::testkit::*;

    #[test]
    fn healthy_lag_passes_every_check() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let not_pass: Vec<&Finding> = f.iter().filter(|x| x.outcome != Outcome::Pass).collect();
        assert!(not_pass.is_empty(), "{not_pass:#?}");
        for pf in ["ens3f0", "ens3f1"] {
            for c in [
                "link",
                "vfs",
                "eswitch",
                "pf-offload",
                "representors",
                "rep-offload",
                "rep-channels",
                "pf-channels",
                "vfs-bound",
                "bond",
                "lag",
            ] {
                get(&f, c, pf);
            }
        }
        for c in ["bond-mode", "bond-members", "bond-bridge"] {
            get(&f, c, "bond0");
        }
        assert_eq!(
            f.iter().filter(|x| x.check == "bond-mode").count(),
            1,
            "once per bond"
        );
        assert!(
            get(&f, "lag", "ens3f1").detail.contains("type switchdev"),
            "{f:#?}"
        );
        assert!(get(&f, "representors", "ens3f0")
            .detail
            .starts_with("2 representors for 2 VFs (sysfs)"));
        assert!(get(&f, "rep-channels", "ens3f0")
            .detail
            .contains("18 combined"));
    }

    #[test]
    fn missing_vfs_fail_with_the_early_unit_in_the_hint() {
        let t = Tree::new();
        t.driver("pci", "mlx5_core");
        let dev = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        t.link(&format!("{dev}/driver"), "sys/bus/pci/drivers/mlx5_core");
        let l = lag(ConfEswitch::Switchdev);
        let mut o = observe(&t, &l, "ens3f0");
        netlink_healthy(&mut o);
        let f = judge_pf(&l, &o);
        let v = get(&f, "vfs", "ens3f0");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.detail, "0 VFs (sriov_numvfs), 2 configured");
        assert!(v
            .hint
            .as_deref()
            .unwrap()
            .contains("journalctl -b -u vflag@ens3f0.service"));
        // Representors are counted against the VFs that exist: none here, the vfs row fails.
        assert_eq!(get(&f, "representors", "ens3f0").outcome, Outcome::Skip);
        assert_eq!(get(&f, "vfs-bound", "ens3f0").outcome, Outcome::Skip);
        // No SR-IOV at all.
        std::fs::remove_file(t.p(&format!("{dev}/sriov_numvfs"))).unwrap();
        let o = observe(&t, &l, "ens3f0");
        let v = judge_pf(&l, &o);
        let v = get(&v, "vfs", "ens3f0");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.hint.as_deref().unwrap().contains("SRIOV_EN=1"), "{v:?}");
    }

    #[test]
    fn missing_pf_is_one_failure() {
        let t = Tree::new();
        let l = lag(ConfEswitch::Switchdev);
        let o = observe(&t, &l, "ens3f0");
        let f = judge_pf(&l, &o);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].check, "present");
        assert_eq!(f[0].outcome, Outcome::Fail);
        assert_eq!(judge_lag(&l, &o, &no_kmsg()).outcome, Outcome::Skip);
    }

    #[test]
    fn eswitch_mode_against_the_config() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |o| {
            o.eswitch = Ok((EswitchMode::Legacy, "devlink"))
        });
        let e = get(&f, "eswitch", "ens3f0");
        assert_eq!(e.outcome, Outcome::Fail);
        assert_eq!(
            e.detail,
            "legacy (devlink pci/0000:37:00.0), switchdev configured"
        );
        assert!(e
            .hint
            .as_deref()
            .unwrap()
            .contains("devlink dev eswitch set pci/0000:37:00.0 mode switchdev"));

        // No devlink at all: the error text, Fail for switchdev, Skip for legacy.
        let o = observe(&t, &l, "ens3f0");
        let e = judge_pf(&l, &o)
            .into_iter()
            .find(|x| x.check == "eswitch")
            .unwrap();
        assert_eq!(e.outcome, Outcome::Fail);
        assert!(e.detail.contains(NO_NETLINK), "{e:?}");
        let legacy = lag(ConfEswitch::Legacy);
        let o = observe(&t, &legacy, "ens3f0");
        let f = judge_pf(&legacy, &o);
        assert_eq!(get(&f, "eswitch", "ens3f0").outcome, Outcome::Skip);
        assert_eq!(get(&f, "representors", "ens3f0").outcome, Outcome::Skip);
        assert_eq!(judge_lag(&legacy, &o, &no_kmsg()).outcome, Outcome::Skip);

        // OFED's compat sysfs answers where devlink cannot.
        t.write("sys/class/net/ens3f0/compat/devlink/mode", "legacy\n");
        let o = observe(&t, &l, "ens3f0");
        assert_eq!(o.eswitch, Ok((EswitchMode::Legacy, "compat sysfs")));
        assert_eq!(
            get(&judge_pf(&l, &o), "eswitch", "ens3f0").outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn representor_offload_off_names_the_ones_off() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |o| {
            if o.name.as_str() == "ens3f0" {
                if let Ok((reps, _)) = &mut o.reps {
                    reps[1].offload = Ok(OFF);
                }
            }
        });
        let r = get(&f, "rep-offload", "ens3f0");
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.detail,
            "hw-tc-offload off on 1 of 2 representors: ens3f0r1 (VF 1)"
        );
        assert_eq!(
            r.hint.as_deref(),
            Some("ethtool -K ens3f0r1 hw-tc-offload on")
        );
        assert_eq!(get(&f, "rep-offload", "ens3f1").outcome, Outcome::Pass);

        // PF offload off: Fail for switchdev, with the ethtool fix.
        let f = all(&t, &l, &no_kmsg(), |o| o.port.offload = Ok(OFF));
        let p = get(&f, "pf-offload", "ens3f0");
        assert_eq!(p.outcome, Outcome::Fail);
        assert!(p
            .hint
            .as_deref()
            .unwrap()
            .starts_with("ethtool -K ens3f0 hw-tc-offload on"));

        // A missing representor is named.
        std::fs::remove_file(t.p("sys/class/net/ens3f1r0")).unwrap();
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let r = get(&f, "representors", "ens3f1");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.detail.ends_with("none for VF 0"), "{r:?}");
    }

    #[test]
    fn channels_clamped_to_the_maximum_pass_with_the_detail() {
        let (o, d, fix) = channels_verdict(&ch(8, 8), 18);
        assert_eq!((o, fix), (Outcome::Pass, None));
        assert_eq!(d, "8 combined channels: the maximum (18 configured)");
        let (o, d, fix) = channels_verdict(&ch(4, 8), 18);
        assert_eq!((o, fix), (Outcome::Warn, Some(8)));
        assert_eq!(d, "4 combined channels, 18 configured (maximum 8)");
        let (o, _, _) = channels_verdict(
            &Channels {
                combined: None,
                combined_max: None,
            },
            18,
        );
        assert_eq!(o, Outcome::Skip);

        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |o| {
            o.port.channels = Ok(ch(16, 63));
            if let Ok((reps, _)) = &mut o.reps {
                reps[0].channels = Ok(ch(1, 64));
            }
        });
        let p = get(&f, "pf-channels", "ens3f0");
        assert_eq!(p.outcome, Outcome::Warn);
        assert_eq!(p.hint.as_deref(), Some("ethtool -L ens3f0 combined 63"));
        let r = get(&f, "rep-channels", "ens3f0");
        assert_eq!(r.outcome, Outcome::Warn);
        assert_eq!(r.hint.as_deref(), Some("ethtool -L ens3f0r0 combined 18"));
    }

    #[test]
    fn port_down_warns() {
        let t = healthy();
        t.write("sys/class/net/ens3f1/operstate", "down\n");
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let l = get(&f, "link", "ens3f1");
        assert_eq!(l.outcome, Outcome::Warn);
        assert!(l.detail.starts_with("operstate down"), "{l:?}");
        assert_eq!(get(&f, "link", "ens3f0").outcome, Outcome::Pass);
    }

    #[test]
    fn unbound_vfs_point_at_the_late_unit() {
        let t = healthy();
        std::fs::remove_file(t.p("sys/devices/pci0000:00/0000:37:00.3/driver")).unwrap();
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let b = get(&f, "vfs-bound", "ens3f0");
        assert_eq!(b.outcome, Outcome::Fail);
        assert_eq!(b.detail, "1/2 VFs bound; no driver on VF 1 (0000:37:00.3)");
        assert!(b
            .hint
            .as_deref()
            .unwrap()
            .contains("systemctl restart vflag-rebind@ens3f0.service"));
        assert_eq!(
            get(&f, "vfs-bound", "ens3f1").detail,
            "2/2 VFs bound (mlx5_core: 2)"
        );
    }
}
