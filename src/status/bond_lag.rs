//! Judging the bond (`bond`, `bond-mode`, `bond-members`, `bond-bridge`) and the LAG (`lag`:
//! debugfs, else the kernel log).

use super::*;
use crate::config::Lag;
use crate::device::devlink::EswitchMode;
use crate::kernlog::{DebugfsLag, LagState};
use crate::stages::{LAG_BOND_MODES, LAG_MAX_VFS};

/// Bond membership of each PF, and (once per bond) its mode, members and upper device.
pub fn judge_bond(lag: &Lag, pfs: &[&PfObs], bonds: &[BondObs]) -> Vec<Finding> {
    let mut out = vec![];
    if lag.pfs.len() < 2 {
        for o in pfs {
            out.push(skip(
                "bond",
                Some(&o.name),
                "one PF configured: no bond expected",
            ));
        }
        return out;
    }
    let want: Vec<&str> = lag.pfs.iter().map(IfName::as_str).collect();
    for o in pfs.iter().filter(|o| o.missing.is_none()) {
        let p = Some(&o.name);
        out.push(match &o.master {
            None => bad(
                "bond",
                p,
                Outcome::Fail,
                format!("{} is not enslaved to a bond", o.name),
                format!("add {} to the bond with {} in the network configuration (both ports of the NIC, nothing else); the late stage binds the VFs once it is", o.name, want.join(" and ")),
            ),
            Some(m) => match bonds.iter().find(|b| b.name == *m) {
                Some(b) if b.mode.is_some() => pass("bond", p, format!("enslaved to {m}")),
                _ => bad(
                    "bond",
                    p,
                    Outcome::Fail,
                    format!("{} is enslaved to {m}, which is not a bond", o.name),
                    format!("make {} a member of a bond (not of a bridge or Open vSwitch directly); put the bond into the bridge", o.name),
                ),
            },
        });
    }
    let mut seen: Vec<&str> = vec![];
    for o in pfs {
        let Some(m) = &o.master else { continue };
        if seen.contains(&m.as_str()) {
            continue;
        }
        seen.push(m);
        let Some(b) = bonds.iter().find(|b| b.name == *m) else {
            continue;
        };
        let Some(mode) = &b.mode else { continue };
        let bn = IfName::new(&b.name).ok();
        let p = bn.as_ref();
        out.push(if LAG_BOND_MODES.contains(&mode.as_str()) {
            pass("bond-mode", p, mode.clone())
        } else {
            bad(
                "bond-mode",
                p,
                Outcome::Fail,
                format!("{mode}: mlx5 offloads only active-backup, balance-xor and 802.3ad"),
                format!("set the mode of {} to 802.3ad (LACP, with the switch), balance-xor or active-backup", b.name),
            )
        });
        out.push(bond_members(b, &want, p));
        out.push(bond_bridge(b, p));
    }
    out
}

/// `bond-members`: exactly the LAG's PFs.
fn bond_members(b: &BondObs, want: &[&str], p: Option<&IfName>) -> Finding {
    let extra: Vec<&str> = b
        .slaves
        .iter()
        .map(String::as_str)
        .filter(|s| !want.contains(s))
        .collect();
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|w| !b.slaves.iter().any(|s| s == w))
        .collect();
    if extra.is_empty() && missing.is_empty() {
        pass("bond-members", p, format!("exactly {}", want.join(" and ")))
    } else {
        let mut why = vec![];
        if !extra.is_empty() {
            why.push(format!("also has {}", extra.join(", ")));
        }
        if !missing.is_empty() {
            why.push(format!("lacks {}", missing.join(", ")));
        }
        let mut fix = vec![];
        if !extra.is_empty() {
            fix.push(format!("remove {} from {}", extra.join(", "), b.name));
        }
        if !missing.is_empty() {
            fix.push(format!("add {} to {}", missing.join(", "), b.name));
        }
        bad(
            "bond-members",
            p,
            Outcome::Fail,
            format!(
                "{} ({}): VF-LAG offloads a bond of exactly the two ports of one NIC",
                why.join("; "),
                b.slaves.join(" ")
            ),
            format!("{} in the network configuration", fix.join(" and ")),
        )
    }
}

/// `bond-bridge`: no Linux bridge on the bond itself.
fn bond_bridge(b: &BondObs, p: Option<&IfName>) -> Finding {
    match &b.upper {
        Some(Upper::Bridge(br)) => bad(
            "bond-bridge",
            p,
            Outcome::Warn,
            format!("Linux bridge {br} is attached directly to {}", b.name),
            format!("attach no Linux bridge to {} itself: use tagged VLAN interfaces of the bond (only tagged VLANs then) or the Open vSwitch bridge", b.name),
        ),
        Some(Upper::Ovs(o)) => pass("bond-bridge", p, format!("a port of Open vSwitch ({o}), no Linux bridge")),
        Some(Upper::Other(o)) => pass("bond-bridge", p, format!("no Linux bridge (master {o})")),
        None => pass("bond-bridge", p, "no Linux bridge attached (and not a port of Open vSwitch)"),
    }
}

/// LAG activation for one PF: debugfs (live) where present, else this boot's kernel log.
pub fn judge_lag(lag: &Lag, o: &PfObs, kmsg: &Seen<LagReport>) -> Finding {
    let p = Some(&o.name);
    if o.missing.is_some() {
        return skip("lag", p, "PF missing");
    }
    if lag.eswitch == ConfEswitch::Legacy {
        return skip(
            "lag",
            p,
            "legacy eswitch configured: VF-LAG is not expected",
        );
    }
    if lag.pfs.len() < 2 {
        return skip("lag", p, "one PF configured: no LAG expected");
    }
    // The mlx5 debugfs LAG files, where the device has them, are the driver's own word.
    let debugfs_seen = matches!(o.debugfs, Ok(Some(_)));
    let dev_name = o.handle.split_once('/').map(|(_, d)| d).unwrap_or_default();
    let pci = match &o.pci {
        Some(pci) => pci.as_str(),
        None if debugfs_seen => dev_name,
        None => {
            return skip(
                "lag",
                p,
                format!("not observable on this device ({})", o.handle),
            )
        }
    };
    if !debugfs_seen && o.driver.as_deref() != Some("mlx5_core") {
        return skip(
            "lag",
            p,
            format!(
                "not observable on this device (driver {})",
                o.driver.as_deref().unwrap_or("none")
            ),
        );
    }
    let journal = "dmesg | grep -i 'mlx5.*lag'";
    let generic_fix = format!(
        "the LAG activates when both PFs are in switchdev mode and in one bond (mode active-backup, balance-xor or 802.3ad) with nothing else, and at most {LAG_MAX_VFS} VFs each: fix the failing rows above; details: {journal}"
    );
    match &o.debugfs {
        Ok(Some(d)) => lag_from_debugfs(o, d, kmsg, pci, generic_fix),
        other => lag_from_kmsg(o, other, kmsg, pci, generic_fix),
    }
}

/// The latest LAG failure the kernel logged for `pci` (or for no PF in particular).
fn log_failure(r: &LagReport, pci: &str) -> Option<(String, &'static str)> {
    if let Some(d) = r.for_pf(pci) {
        if let LagState::Failed { reason, .. } = &d.state {
            return Some((format!("{reason:?}"), reason.hint()));
        }
    }
    r.unattributed.iter().rev().find_map(|e| match &e.kind {
        kernlog::LagEventKind::Failure { reason } => Some((format!("{reason:?}"), reason.hint())),
        _ => None,
    })
}

/// `lag` from mlx5's debugfs files (authoritative, live).
fn lag_from_debugfs(
    o: &PfObs,
    d: &DebugfsLag,
    kmsg: &Seen<LagReport>,
    pci: &str,
    generic_fix: String,
) -> Finding {
    let p = Some(&o.name);
    let members = if d.members.is_empty() {
        String::new()
    } else {
        format!(", members {}", d.members.join(" "))
    };
    let extra = [
        d.port_sel_mode
            .as_ref()
            .map(|m| format!("port_sel_mode {m}")),
        d.shared_fdb
            .map(|s| format!("shared_fdb {}", if s { "on" } else { "off" })),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {}", extra.join(", "))
    };
    let members = format!("{members}{}", map_text(d));
    if !d.active {
        let (why, hint) = match kmsg.as_ref().ok().and_then(|r| log_failure(r, pci)) {
            Some((w, h)) => (format!("; kernel log: {w}"), format!("{h}; {generic_fix}")),
            None => (String::new(), generic_fix.clone()),
        };
        return bad(
            "lag",
            p,
            Outcome::Fail,
            format!("not active (debugfs lag/state: disabled){why}"),
            hint,
        );
    }
    match d.lag_type.as_deref() {
            Some("switchdev") | None => pass(
                "lag",
                p,
                format!("active (debugfs), type {}{extra}{members}", d.lag_type.as_deref().unwrap_or("not shown")),
            ),
            Some("roce") => bad(
                "lag",
                p,
                Outcome::Fail,
                format!("a RoCE LAG is active, not VF-LAG (debugfs lag/type roce){members}: the PFs were bonded while the eswitch was legacy"),
                format!("the eswitch must be switchdev before the PFs join the bond: see `journalctl -b -u {}` and reboot", o.name.early_unit()),
            ),
            Some(t) => bad(
                "lag",
                p,
                Outcome::Warn,
                format!("active (debugfs), type {t}{extra}{members}: not a switchdev VF-LAG"),
                generic_fix,
            ),
        }
}

/// `, map 1:2 2:2 (failover: port 1's traffic on port 2)` from debugfs `mapping`: queue
/// affinity lines `port:tx-port` (a port mapped elsewhere lost carrier or is a bond backup),
/// or, in hash mode, the ports still sending.
fn map_text(d: &DebugfsLag) -> String {
    if d.mapping.is_empty() {
        return String::new();
    }
    let moved: Vec<String> = d
        .mapping
        .iter()
        .filter_map(|l| {
            let (p, to) = l.split_once(':')?;
            (p.trim() != to.trim())
                .then(|| format!("port {}'s traffic on port {}", p.trim(), to.trim()))
        })
        .collect();
    if d.mapping.iter().all(|l| !l.contains(':')) {
        return format!(", tx ports {}", d.mapping.join(" "));
    }
    let note = if moved.is_empty() {
        String::new()
    } else {
        format!(" ({})", moved.join(", "))
    };
    format!(", map {}{note}", d.mapping.join(" "))
}

/// `lag` from this boot's kernel log, where debugfs is not there (`debugfs`: why).
fn lag_from_kmsg(
    o: &PfObs,
    debugfs: &Seen<Option<DebugfsLag>>,
    kmsg: &Seen<LagReport>,
    pci: &str,
    generic_fix: String,
) -> Finding {
    let p = Some(&o.name);
    // The kernel log's latest word, if any, for this NIC.
    let logged = kmsg.as_ref().ok().and_then(|r| r.for_pf(pci));
    let debugfs_note = match debugfs {
        Err(e) => format!("{e}; "),
        _ => String::new(),
    };
    let report = match kmsg {
        Ok(r) => r,
        Err(e) => {
            return bad("lag", p, Outcome::Warn, format!("not observable: {debugfs_note}no debugfs lag/state, kernel log unreadable ({e})"), "run as root; mount debugfs (mount -t debugfs none /sys/kernel/debug) for the live lag/state");
        }
    };
    let stale = "kernel log of this boot; newer kernels log nothing on teardown, mount debugfs for the live state";
    match logged.map(|d| &d.state) {
            Some(LagState::Active { ports, active_ports, mode, remaps, .. }) => {
                let map = if ports.is_empty() {
                    active_ports.as_ref().map(|a| format!("active ports {a:?}")).unwrap_or_default()
                } else {
                    ports.iter().map(|m| format!("port {}:{}", m.port, m.to)).collect::<Vec<_>>().join(" ")
                };
                let mode = mode.as_ref().map(|m| format!(", mode {m}")).unwrap_or_default();
                let d = format!("active: {map}{mode}, {remaps} remaps ({debugfs_note}{stale})");
                // The log's latest word is a failed remap: the map above may be stale.
                let modfail = logged.and_then(|l| match &l.last_event.kind {
                    kernlog::LagEventKind::ModifyFailed { code } => Some(*code),
                    _ => None,
                });
                match &o.eswitch {
                    _ if modfail.is_some() => bad(
                        "lag",
                        p,
                        Outcome::Warn,
                        format!("{d}; the last failover remap failed (Failed to modify LAG ({}))", modfail.unwrap_or_default()),
                        "traffic may still be mapped to a port that went down: check both ports' links; the firmware refused the remap (see dmesg)",
                    ),
                    Ok((EswitchMode::Switchdev, _)) => pass("lag", p, d),
                    _ => bad("lag", p, Outcome::Warn, format!("{d}; the eswitch is not seen in switchdev mode, so this may be a RoCE LAG"), generic_fix),
                }
            }
            Some(LagState::Failed { reason, .. }) => bad(
                "lag",
                p,
                Outcome::Fail,
                format!("failed: {reason:?} ({stale})"),
                format!("{}; {generic_fix}", reason.hint()),
            ),
            None => match log_failure(report, pci) {
                Some((w, h)) => bad("lag", p, Outcome::Fail, format!("refused: {w} (kernel log of this boot)"), format!("{h}; {generic_fix}")),
                None => bad(
                    "lag",
                    p,
                    Outcome::Warn,
                    format!("not seen: {debugfs_note}no debugfs lag/state and no LAG lines in this boot's kernel log"),
                    format!("mount debugfs (mount -t debugfs none /sys/kernel/debug) to read lag/state; {generic_fix}"),
                ),
            },
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::testkit::*;

    #[test]
    fn pf_not_enslaved() {
        let t = healthy();
        t.bond("bond0", "802.3ad 4", &["ens3f1"]);
        std::fs::remove_file(t.p("sys/class/net/ens3f0/master")).unwrap();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let b = get(&f, "bond", "ens3f0");
        assert_eq!(b.outcome, Outcome::Fail);
        assert_eq!(b.detail, "ens3f0 is not enslaved to a bond");
        assert!(b
            .hint
            .as_deref()
            .unwrap()
            .contains("add ens3f0 to the bond with ens3f0 and ens3f1"));
        assert_eq!(get(&f, "bond", "ens3f1").outcome, Outcome::Pass);
        let m = get(&f, "bond-members", "bond0");
        assert_eq!(m.outcome, Outcome::Fail);
        assert!(m.detail.starts_with("lacks ens3f0"), "{m:?}");
        assert_eq!(
            m.hint.as_deref(),
            Some("add ens3f0 to bond0 in the network configuration")
        );
    }

    #[test]
    fn pf_enslaved_to_something_that_is_not_a_bond() {
        let t = healthy();
        t.netdev("br-ex", 90, None);
        t.link(
            "sys/class/net/ens3f0/master",
            "sys/devices/virtual/net/br-ex",
        );
        let l = lag(ConfEswitch::Switchdev);
        let mut o = observe(&t, &l, "ens3f0");
        netlink_healthy(&mut o);
        let bonds = vec![observe_bond(&t.root(), "br-ex")];
        let f = judge_bond(&l, &[&o], &bonds);
        let b = get(&f, "bond", "ens3f0");
        assert_eq!(b.outcome, Outcome::Fail);
        assert_eq!(b.detail, "ens3f0 is enslaved to br-ex, which is not a bond");
    }

    #[test]
    fn wrong_bond_mode() {
        let t = healthy();
        t.write(
            "sys/devices/virtual/net/bond0/bonding/mode",
            "balance-rr 0\n",
        );
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let m = get(&f, "bond-mode", "bond0");
        assert_eq!(m.outcome, Outcome::Fail);
        assert!(m.detail.starts_with("balance-rr:"), "{m:?}");
        assert!(m.hint.as_deref().unwrap().contains("802.3ad"));
        for mode in ["active-backup 1", "balance-xor 2"] {
            t.write("sys/devices/virtual/net/bond0/bonding/mode", mode);
            let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
            assert_eq!(
                get(&f, "bond-mode", "bond0").outcome,
                Outcome::Pass,
                "{mode}"
            );
        }
    }

    #[test]
    fn third_interface_in_the_bond() {
        let t = healthy();
        t.netdev("eno1", 2, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1", "eno1"]);
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let m = get(&f, "bond-members", "bond0");
        assert_eq!(m.outcome, Outcome::Fail);
        assert!(
            m.detail.starts_with("also has eno1 (ens3f0 ens3f1 eno1)"),
            "{m:?}"
        );
        assert_eq!(
            m.hint.as_deref(),
            Some("remove eno1 from bond0 in the network configuration")
        );
    }

    #[test]
    fn bridge_on_the_bond_warns_ovs_does_not() {
        let t = healthy();
        t.netdev("br0", 91, None);
        t.write("sys/devices/virtual/net/br0/bridge/stp_state", "0\n");
        t.link(
            "sys/devices/virtual/net/bond0/master",
            "sys/devices/virtual/net/br0",
        );
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let b = get(&f, "bond-bridge", "bond0");
        assert_eq!(b.outcome, Outcome::Warn);
        assert_eq!(b.detail, "Linux bridge br0 is attached directly to bond0");
        assert!(b.hint.as_deref().unwrap().contains("tagged VLAN"));

        t.netdev("ovs-system", 92, None);
        t.link(
            "sys/devices/virtual/net/bond0/master",
            "sys/devices/virtual/net/ovs-system",
        );
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        assert_eq!(get(&f, "bond-bridge", "bond0").outcome, Outcome::Pass);
    }

    #[test]
    fn debugfs_lag_active_inactive_and_roce() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let a = get(&f, "lag", "ens3f0");
        assert_eq!(a.outcome, Outcome::Pass);
        assert_eq!(a.detail, "active (debugfs), type switchdev, port_sel_mode hash, shared_fdb on, members 0000:37:00.0 0000:37:00.1");

        debugfs(&t, "0000:37:00.0", "disabled", None);
        for x in ["type", "port_sel_mode", "flags", "members"] {
            std::fs::remove_file(t.p(&format!("sys/kernel/debug/mlx5/0000:37:00.0/lag/{x}")))
                .unwrap();
        }
        let f = all(
            &t,
            &l,
            &kmsg(include_str!("../../tests/fixtures/status/kmsg-failed.txt")),
            |_| {},
        );
        let d = get(&f, "lag", "ens3f0");
        assert_eq!(d.outcome, Outcome::Fail);
        assert!(
            d.detail
                .starts_with("not active (debugfs lag/state: disabled); kernel log: ActivateVfLag"),
            "{d:?}"
        );
        assert!(
            d.hint.as_deref().unwrap().contains("VFs are unbound"),
            "{d:?}"
        );
        // ens3f1 has no debugfs files of its own: the pair's are used.
        assert_eq!(get(&f, "lag", "ens3f1").outcome, Outcome::Fail);

        debugfs(&t, "0000:37:00.0", "active", Some("roce"));
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let r = get(&f, "lag", "ens3f0");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.detail.starts_with("a RoCE LAG is active, not VF-LAG"),
            "{r:?}"
        );
    }

    /// One port losing carrier with the LAG active (mlx5_modify_lag: `mapping` 1:2 2:2): `lag`
    /// still passes and shows the moved traffic; `link` warns for the port that went down.
    #[test]
    fn debugfs_mapping_after_one_port_lost_carrier() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let d = "sys/kernel/debug/mlx5/0000:37:00.0/lag";
        t.write(&format!("{d}/port_sel_mode"), "queue_affinity\n");
        t.write(&format!("{d}/mapping"), "1:1\n2:2\n");
        let f = all(&t, &l, &no_kmsg(), |_| {});
        assert!(
            get(&f, "lag", "ens3f0").detail.ends_with(", map 1:1 2:2"),
            "{:?}",
            get(&f, "lag", "ens3f0")
        );

        t.write(&format!("{d}/mapping"), "1:2\n2:2\n");
        t.write("sys/class/net/ens3f0/operstate", "lowerlayerdown\n");
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let a = get(&f, "lag", "ens3f0");
        assert_eq!(a.outcome, Outcome::Pass);
        assert!(
            a.detail
                .ends_with(", map 1:2 2:2 (port 1's traffic on port 2)"),
            "{a:?}"
        );
        // a warning, not a failure: the LAG carries the traffic on the other port
        assert_eq!(get(&f, "link", "ens3f0").outcome, Outcome::Warn);
        assert!(!crate::report::degraded(&f));

        // hash mode lists the ports still sending
        t.write(&format!("{d}/port_sel_mode"), "hash\n");
        t.write(&format!("{d}/mapping"), "2\n");
        let f = all(&t, &l, &no_kmsg(), |_| {});
        assert!(get(&f, "lag", "ens3f0").detail.ends_with(", tx ports 2"));
    }

    #[test]
    fn kernel_log_when_debugfs_is_absent() {
        let t = healthy();
        std::fs::remove_dir_all(t.p("sys/kernel/debug")).unwrap();
        let l = lag(ConfEswitch::Switchdev);
        let active = kmsg(include_str!("../../tests/fixtures/status/kmsg-active.txt"));
        let f = all(&t, &l, &active, |_| {});
        // ens3f1 (function 1) finds the NIC's lines logged by function 0.
        for pf in ["ens3f0", "ens3f1"] {
            let a = get(&f, "lag", pf);
            assert_eq!(a.outcome, Outcome::Pass, "{a:?}");
            assert!(
                a.detail
                    .starts_with("active: port 1:2 port 2:2, mode hash, 1 remaps"),
                "{a:?}"
            );
            assert!(a.detail.contains("newer kernels log nothing on teardown"));
        }
        // The same lines without switchdev seen: could be a RoCE LAG.
        let f = all(&t, &l, &active, |o| {
            o.eswitch = Err("devlink: unsupported".into())
        });
        assert_eq!(get(&f, "lag", "ens3f0").outcome, Outcome::Warn);

        let failed = kmsg(include_str!("../../tests/fixtures/status/kmsg-failed.txt"));
        let f = all(&t, &l, &failed, |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Fail);
        assert!(x.detail.starts_with("failed: ActivateVfLag"), "{x:?}");
        assert!(
            x.hint
                .as_deref()
                .unwrap()
                .starts_with("firmware refused the LAG"),
            "{x:?}"
        );

        let modfail = kmsg(include_str!(
            "../../tests/fixtures/status/kmsg-modify-failed.txt"
        ));
        let f = all(&t, &l, &modfail, |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Warn, "{x:?}");
        assert!(
            x.detail
                .ends_with("the last failover remap failed (Failed to modify LAG (-5))"),
            "{x:?}"
        );

        let none = kmsg(include_str!("../../tests/fixtures/status/kmsg-no-lag.txt"));
        let f = all(&t, &l, &none, |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Warn);
        assert!(
            x.hint.as_deref().unwrap().contains("mount -t debugfs"),
            "{x:?}"
        );

        let f = all(&t, &l, &Err("/dev/kmsg: Permission denied".into()), |_| {});
        assert!(get(&f, "lag", "ens3f0")
            .detail
            .contains("kernel log unreadable (/dev/kmsg: Permission denied)"));
    }

    /// mlx5 names its debugfs directory after the device name; a device that has the LAG files
    /// is judged by them on any bus (the test bed's ConnectX model on netdevsim).
    #[test]
    fn debugfs_lag_of_a_non_pci_device() {
        let t = Tree::new();
        for (name, id) in [("eni10np1", 10), ("eni11np1", 11)] {
            let dev = format!("sys/devices/netdevsim{id}");
            t.write(&format!("{dev}/sriov_numvfs"), "2\n");
            t.link(&format!("{dev}/subsystem"), "sys/bus/netdevsim");
            t.netdev(name, id, Some(&dev));
        }
        t.bond("bond0", "active-backup 1", &["eni10np1", "eni11np1"]);
        let mut l = lag(ConfEswitch::Switchdev);
        l.pfs = vec![n("eni10np1"), n("eni11np1")];
        let judge = |pf: &str| judge_lag(&l, &observe(&t, &l, pf), &no_kmsg());
        assert_eq!(judge("eni10np1").outcome, Outcome::Skip);

        let d = "sys/kernel/debug/mlx5/netdevsim10/lag";
        t.write(&format!("{d}/state"), "disabled\n");
        let f = judge("eni11np1");
        assert_eq!(f.outcome, Outcome::Fail, "{f:?}");
        assert!(
            f.detail
                .starts_with("not active (debugfs lag/state: disabled)"),
            "{f:?}"
        );

        t.write(&format!("{d}/state"), "active\n");
        t.write(&format!("{d}/type"), "switchdev\n");
        t.write(&format!("{d}/members"), "netdevsim10\nnetdevsim11\n");
        let f = judge("eni10np1");
        assert_eq!(f.outcome, Outcome::Pass, "{f:?}");
        assert_eq!(
            f.detail,
            "active (debugfs), type switchdev, members netdevsim10 netdevsim11"
        );
    }

    #[test]
    fn lag_not_observable_on_other_devices() {
        let t = healthy();
        t.driver("pci", "ice");
        t.link(
            "sys/devices/pci0000:00/0000:37:00.0/driver",
            "sys/bus/pci/drivers/ice",
        );
        // Only mlx5 creates mlx5/<device>/ in debugfs.
        std::fs::remove_dir_all(t.p("sys/kernel/debug")).unwrap();
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Skip);
        assert_eq!(x.detail, "not observable on this device (driver ice)");
    }
}
