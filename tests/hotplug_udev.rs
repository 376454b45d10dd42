//! Host-side tests of the hot-plug decision (`vflag udev-import`), the finish protocol against a
//! simulated udev database, and a syntax-level check of udev-rules/*.rules. Real udev behaviour
//! (property import, SYSTEMD_WANTS, NM/networkd honouring the hold) is only provable in the guest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vflag::config::{self, Plan};
use vflag::hotplug::{self, Finish, UdevEvent};
use vflag::names::IfName;
use vflag::paths::Root;

struct Host {
    dir: tempfile::TempDir,
    root: Root,
    plan: Plan,
}

impl Host {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// A PCI function with a netdev: /sys/devices/pci0000:00/<pci>/net/<kname> and the
    /// /sys/class/net/<name> view of it (under its final name).
    fn netdev(
        &self,
        pci: &str,
        kname: &str,
        name: &str,
        ifindex: u32,
        phys_port_name: Option<&str>,
    ) -> String {
        let devpath = format!("/devices/pci0000:00/{pci}/net/{kname}");
        let sys = format!("/sys{devpath}");
        self.write(&format!("{sys}/ifindex"), &format!("{ifindex}\n"));
        if let Some(p) = phys_port_name {
            self.write(&format!("{sys}/phys_port_name"), &format!("{p}\n"));
        }
        // device -> the PCI function directory
        let pcidir = self.path(&format!("/sys/devices/pci0000:00/{pci}"));
        let link = self.path(&format!("{sys}/device"));
        if !link.exists() {
            std::os::unix::fs::symlink(&pcidir, &link).unwrap();
        }
        let class = self.path("/sys/class/net");
        std::fs::create_dir_all(&class).unwrap();
        let _ = std::os::unix::fs::symlink(self.path(&sys), class.join(name));
        devpath
    }

    /// Make `vf_pci` a VF of `pf_pci` (device/physfn link).
    fn make_vf(&self, vf_pci: &str, pf_pci: &str) {
        let vf = self.path(&format!("/sys/devices/pci0000:00/{vf_pci}"));
        std::fs::create_dir_all(&vf).unwrap();
        std::os::unix::fs::symlink(
            self.path(&format!("/sys/devices/pci0000:00/{pf_pci}")),
            vf.join("physfn"),
        )
        .unwrap();
    }
}

fn host(conf: &str) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    let p = dir.path().join("etc/vflag/vflag.conf");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, conf).unwrap();
    let loaded = config::load(&root);
    let errors: Vec<String> = loaded.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    Host {
        dir,
        root,
        plan: loaded.plan,
    }
}

const AUTO: &str = "[lag bond0]\npfs = ens1f0 ens1f1\nvfs = 4\n";

fn props(
    h: &Host,
    name: &str,
    devpath: Option<&str>,
    ifindex: Option<u32>,
) -> Vec<(String, String)> {
    let ev = UdevEvent {
        name: name.into(),
        devpath: devpath.map(String::from),
        ifindex,
    };
    hotplug::udev_import_event(&h.root, &h.plan, &ev)
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

fn name(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

#[test]
// Long on purpose: one story told in order, each step building on the state the last one left.
fn configured_pf_is_tagged_and_held_only_while_an_early_stage_will_release_it() {
    let h = host(AUTO);
    let pf = name("ens1f0");
    // During the rename the netdev is still eth3 in sysfs; $name is already ens1f0.
    let dp = h.netdev("0000:01:00.0", "eth3", "ens1f0", 12, Some("p0"));

    // Boot coldplug, before any early stage started: tagged, no hold (ordering protects).
    let p = props(&h, "ens1f0", Some(&dp), Some(12));
    assert_eq!(get(&p, "VFLAG_PF"), Some("1"));
    assert_eq!(get(&p, "VFLAG_LAG"), Some("bond0"));
    assert_eq!(get(&p, "VFLAG_INSTANCE"), Some("ens1f0"));
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag@ens1f0.service"));
    assert_eq!(get(&p, "VFLAG_HOLD"), None, "{p:?}");
    assert_eq!(get(&p, "NM_UNMANAGED"), None);
    assert_eq!(
        hotplug::state(&h.root, &pf, Some(12)),
        hotplug::PfState::BeforeProtocol
    );

    assert_eq!(
        get(&p, "VFLAG_LATE_UNIT"),
        None,
        "boot wants the late stage already"
    );

    // The early stage began (or some early stage did this boot): pending -> held.
    hotplug::begin(&h.root, &pf, false).unwrap();
    let p = props(&h, "ens1f0", Some(&dp), Some(12));
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag@ens1f0.service"));
    assert_eq!(
        get(&p, "VFLAG_LATE_UNIT"),
        Some("vflag-rebind@ens1f0.service")
    );
    assert_eq!(get(&p, "VFLAG_HOLD"), Some("1"));
    assert_eq!(get(&p, "NM_UNMANAGED"), Some("1"));
    assert_eq!(get(&p, "ID_NET_MANAGED_BY"), Some("vflag"));

    // The early stage finished with ifindex 12: no hold any more, still a PF with its unit.
    h.write("/run/vflag/hotplug/ens1f0", "12\n");
    let p = props(&h, "ens1f0", Some(&dp), Some(12));
    assert_eq!(get(&p, "VFLAG_PF"), Some("1"));
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag@ens1f0.service"));
    assert_eq!(get(&p, "VFLAG_LATE_UNIT"), None);
    assert_eq!(get(&p, "VFLAG_HOLD"), None);
    assert_eq!(get(&p, "NM_UNMANAGED"), None);
    assert_eq!(get(&p, "ID_NET_MANAGED_BY"), None);
    // Without IFINDEX in the environment, sysfs (through DEVPATH) gives it.
    let p = props(&h, "ens1f0", Some(&dp), None);
    assert_eq!(get(&p, "VFLAG_HOLD"), None, "{p:?}");

    // Removed and re-added (new ifindex) after the early stage finished: vflag@ stays active
    // (RemainAfterExit), so nothing would release a hold: not held.
    let p = props(&h, "ens1f0", Some(&dp), Some(31));
    assert_eq!(get(&p, "VFLAG_READD"), Some("1"));
    assert_eq!(get(&p, "VFLAG_HOLD"), None, "{p:?}");
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag@ens1f0.service"));
    // ... unless a hot-plug unit that runs on every start is installed.
    h.write(
        "/usr/lib/systemd/system/vflag-hotplug@.service",
        "[Service]\n",
    );
    let p = props(&h, "ens1f0", Some(&dp), Some(31));
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag-hotplug@ens1f0.service"));
    assert_eq!(get(&p, "VFLAG_HOLD"), Some("1"));
    assert_eq!(get(&p, "NM_UNMANAGED"), Some("1"));
    // `systemctl mask vflag-hotplug@.service`: systemd would not start it, so no hold (a hold
    // nobody releases would keep the port out of the bond); an empty file is a mask too.
    let mask = h.path("/etc/systemd/system/vflag-hotplug@.service");
    std::fs::create_dir_all(mask.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/null", &mask).unwrap();
    let p = props(&h, "ens1f0", Some(&dp), Some(31));
    assert_eq!(get(&p, "VFLAG_HOLD"), None, "{p:?}");
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag@ens1f0.service"));
    std::fs::remove_file(&mask).unwrap();
    h.write("/etc/systemd/system/vflag-hotplug@.service", "");
    let p = props(&h, "ens1f0", Some(&dp), Some(31));
    assert_eq!(get(&p, "VFLAG_HOLD"), None, "{p:?}");
    // An override with content in /etc is the unit systemd runs: held.
    h.write(
        "/etc/systemd/system/vflag-hotplug@.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    let p = props(&h, "ens1f0", Some(&dp), Some(31));
    assert_eq!(get(&p, "VFLAG_HOLD"), Some("1"), "{p:?}");
}

/// A NIC absent at boot: no early stage ever began (its unit failed by dependency), but the late
/// stage ran (and failed) after the stack started. Plugged in later, the PF must be held, with
/// its early stage and its late stage wanted — not taken by the stack as it is.
#[test]
fn pf_absent_at_boot_is_held_when_plugged_in_after_the_late_stage_ran() {
    let h = host("[lag bond0]\npfs = ens1f0 ens1f1\nvfs = 4\nnetwork-stack = NetworkManager\n");
    let pf = name("ens1f0");
    assert!(!h.path("/run/vflag/hotplug").exists());
    hotplug::arm(&h.root).unwrap();
    hotplug::arm(&h.root).unwrap(); // every late stage arms; the second time changes nothing
    let dp = h.netdev("0000:01:00.0", "eth2", "ens1f0", 7, Some("p0"));
    assert_eq!(
        hotplug::state(&h.root, &pf, Some(7)),
        hotplug::PfState::Pending
    );
    let p = props(&h, "ens1f0", Some(&dp), Some(7));
    assert_eq!(get(&p, "VFLAG_HOLD"), Some("1"), "{p:?}");
    assert_eq!(get(&p, "NM_UNMANAGED"), Some("1"));
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag@ens1f0.service"));
    assert_eq!(
        get(&p, "VFLAG_LATE_UNIT"),
        Some("vflag-rebind@ens1f0.service")
    );
    // Its early stage then finishes: the next add of the same netdev is not held.
    hotplug::begin(&h.root, &pf, false).unwrap();
    h.write("/run/vflag/hotplug/ens1f0", "7\n");
    let p = props(&h, "ens1f0", Some(&dp), Some(7));
    assert_eq!(get(&p, "VFLAG_HOLD"), None);
    assert_eq!(get(&p, "VFLAG_LATE_UNIT"), None);
}

/// A `change` event on a configured PF that is already a bond port (a LAG added to the
/// configuration of a running host, `udevadm trigger -c change`): never held, whatever the
/// protocol state, and no set-up unit wanted (the early stage would refuse the enslaved port).
#[test]
fn a_pf_with_a_master_is_never_held() {
    let h = host("[lag bond0]\npfs = ens1f0 ens1f1\nvfs = 4\n");
    let pf = name("ens1f0");
    let dp = h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 12, Some("p0"));
    let bond = h.path("/sys/devices/virtual/net/bond0");
    std::fs::create_dir_all(&bond).unwrap();
    // As in sysfs: a relative link from the port's directory to the bond's.
    std::os::unix::fs::symlink(
        "../../../../virtual/net/bond0",
        h.path(&format!("/sys{dp}/master")),
    )
    .unwrap();
    let no_hold = |p: &[(String, String)], what: &str| {
        assert_eq!(get(p, "VFLAG_PF"), Some("1"), "{what}: {p:?}");
        for k in [
            "VFLAG_HOLD",
            "NM_UNMANAGED",
            "ID_NET_MANAGED_BY",
            "VFLAG_UNIT",
            "VFLAG_LATE_UNIT",
        ] {
            assert_eq!(get(p, k), None, "{what}: {k} in {p:?}");
        }
        assert_eq!(get(p, "VFLAG_MASTER"), Some("bond0"), "{what}: {p:?}");
    };

    // Boot coldplug (no hold anyway): the generator's units run, udev wants none.
    no_hold(
        &props(&h, "ens1f0", Some(&dp), Some(12)),
        "before the protocol",
    );
    // Pending: a late stage armed the protocol, this PF's early stage never ran this boot.
    hotplug::arm(&h.root).unwrap();
    assert_eq!(
        hotplug::state(&h.root, &pf, Some(12)),
        hotplug::PfState::Pending
    );
    no_hold(&props(&h, "ens1f0", Some(&dp), Some(12)), "pending");
    // Without DEVPATH, sysfs is read under /sys/class/net/<name>.
    no_hold(&props(&h, "ens1f0", None, Some(12)), "pending, no DEVPATH");

    // Readded with the hot-plug unit installed (the state that holds a re-added PF).
    h.write("/run/vflag/hotplug/ens1f0", "7\n");
    h.write(
        "/usr/lib/systemd/system/vflag-hotplug@.service",
        "[Service]\n",
    );
    assert_eq!(
        hotplug::state(&h.root, &pf, Some(12)),
        hotplug::PfState::Readded
    );
    no_hold(&props(&h, "ens1f0", Some(&dp), Some(12)), "readded");

    // Out of the bond again: the same event is held as before (the rule is the master only).
    std::fs::remove_file(h.path(&format!("/sys{dp}/master"))).unwrap();
    let p = props(&h, "ens1f0", Some(&dp), Some(12));
    assert_eq!(get(&p, "VFLAG_HOLD"), Some("1"), "{p:?}");
    assert_eq!(get(&p, "VFLAG_MASTER"), None, "{p:?}");
}

/// VFs of a configured PF stay unmanaged by the host stack, unless one has a master: a port
/// with a master is never held.
#[test]
fn a_vf_with_a_master_is_not_taken_from_its_stack() {
    let h = host(AUTO);
    h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 5, Some("p0"));
    let vf = h.netdev("0000:01:00.2", "eth5", "ens1f0v0", 50, None);
    h.make_vf("0000:01:00.2", "0000:01:00.0");
    std::fs::create_dir_all(h.path("/sys/devices/virtual/net/br0")).unwrap();
    std::os::unix::fs::symlink(
        h.path("/sys/devices/virtual/net/br0"),
        h.path(&format!("/sys{vf}/master")),
    )
    .unwrap();
    let p = props(&h, "ens1f0v0", Some(&vf), Some(50));
    assert_eq!(get(&p, "VFLAG_VF"), Some("1"), "{p:?}");
    assert_eq!(get(&p, "NM_UNMANAGED"), None, "{p:?}");
    assert_eq!(get(&p, "ID_NET_MANAGED_BY"), None, "{p:?}");
    assert_eq!(get(&p, "VFLAG_MASTER"), Some("br0"), "{p:?}");
}

#[test]
fn hold_follows_the_configured_stack() {
    for (stack, nm, networkd) in [
        ("NetworkManager", true, false),
        ("systemd-networkd", false, true),
        ("network-scripts", false, false),
        ("none", false, false),
    ] {
        let h = host(&format!(
            "[lag bond0]\npfs = ens1f0 ens1f1\nvfs = 4\nnetwork-stack = {stack}\n"
        ));
        let dp = h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 5, None);
        hotplug::begin(&h.root, &name("ens1f0"), false).unwrap();
        let p = props(&h, "ens1f0", Some(&dp), Some(5));
        assert_eq!(get(&p, "VFLAG_PF"), Some("1"), "{stack}");
        assert_eq!(get(&p, "VFLAG_INSTANCE"), Some("ens1f0"), "{stack}");
        assert_eq!(get(&p, "NM_UNMANAGED").is_some(), nm, "{stack}: {p:?}");
        assert_eq!(
            get(&p, "ID_NET_MANAGED_BY").is_some(),
            networkd,
            "{stack}: {p:?}"
        );
        assert_eq!(
            get(&p, "VFLAG_HOLD").is_some(),
            nm || networkd,
            "{stack}: {p:?}"
        );
    }
}

#[test]
fn unconfigured_devices_and_representors_get_nothing() {
    let h = host(AUTO);
    let dp = h.netdev("0000:02:00.0", "eno1", "eno1", 2, None);
    assert!(props(&h, "eno1", Some(&dp), Some(2)).is_empty());
    // A representor that (mis)carries a configured PF's name is never treated as the PF.
    let dp = h.netdev("0000:01:00.0", "eth9", "ens1f1", 40, Some("pf0vf0"));
    assert!(props(&h, "ens1f1", Some(&dp), Some(40)).is_empty());
    for bad in ["", "../x", "a b", "0123456789abcdef"] {
        assert!(props(&h, bad, None, None).is_empty(), "{bad:?}");
    }
}

#[test]
fn vfs_of_configured_pfs_are_kept_from_the_stack() {
    let h = host(AUTO);
    h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 5, Some("p0"));
    let vf = h.netdev("0000:01:00.2", "eth5", "ens1f0v0", 50, None);
    h.make_vf("0000:01:00.2", "0000:01:00.0");
    let p = props(&h, "ens1f0v0", Some(&vf), Some(50));
    assert_eq!(get(&p, "VFLAG_VF"), Some("1"));
    assert_eq!(get(&p, "NM_UNMANAGED"), Some("1"));
    assert_eq!(get(&p, "ID_NET_MANAGED_BY"), Some("vflag"));
    assert_eq!(get(&p, "VFLAG_PF"), None);

    // A VF of some other SR-IOV NIC is left alone.
    h.netdev("0000:03:00.0", "eno5", "eno5", 6, None);
    let vf = h.netdev("0000:03:00.4", "eth6", "eno5v0", 60, None);
    h.make_vf("0000:03:00.4", "0000:03:00.0");
    assert!(props(&h, "eno5v0", Some(&vf), Some(60)).is_empty());
}

#[test]
fn a_pf_whose_unit_name_needs_escaping_is_not_held() {
    let h = host("[lag bond0]\npfs = ens-a ens-b\nvfs = 4\n");
    let dp = h.netdev("0000:01:00.0", "ens-a", "ens-a", 5, None);
    hotplug::begin(&h.root, &name("ens-a"), false).unwrap();
    let p = props(&h, "ens-a", Some(&dp), Some(5));
    assert_eq!(get(&p, "VFLAG_PF"), Some("1"));
    assert_eq!(get(&p, "VFLAG_SKIP"), Some("instance-needs-escaping"));
    assert_eq!(get(&p, "VFLAG_INSTANCE"), None);
    assert_eq!(get(&p, "VFLAG_UNIT"), None);
    assert_eq!(get(&p, "VFLAG_HOLD"), None);
    assert_eq!(get(&p, "NM_UNMANAGED"), None);
}

#[test]
fn properties_print_as_import_program_lines() {
    let p = vec![
        ("VFLAG_PF".to_string(), "1".to_string()),
        ("VFLAG_INSTANCE".into(), "ens1f0".into()),
    ];
    assert_eq!(
        hotplug::format_properties(&p),
        "VFLAG_PF=1\nVFLAG_INSTANCE=ens1f0\n"
    );
}

// --- finish(): the end of the early stage -----------------------------------------------------

fn pf_host() -> Host {
    let h = host(AUTO);
    h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 12, Some("p0"));
    h.write("/sys/devices/pci0000:00/0000:01:00.0/net/ens1f0/uevent", "");
    hotplug::begin(&h.root, &name("ens1f0"), false).unwrap();
    h
}

/// ens1f0 as a port of bond0 (sysfs `master` link).
fn enslave_to_bond0(h: &Host) {
    let bond = h.path("/sys/devices/virtual/net/bond0");
    std::fs::create_dir_all(&bond).unwrap();
    std::os::unix::fs::symlink(
        &bond,
        h.path("/sys/devices/pci0000:00/0000:01:00.0/net/ens1f0/master"),
    )
    .unwrap();
}

#[test]
fn finish_without_udev_database_only_writes_the_marker() {
    let h = pf_host();
    hotplug::begin(&h.root, &name("ens1f0"), false).unwrap(); // again, no marker: fine
    let r = hotplug::finish(&h.root, &name("ens1f0"), Duration::from_secs(1)).unwrap();
    assert_eq!(r, Finish::NotHeld);
    assert_eq!(
        std::fs::read_to_string(h.path("/run/vflag/hotplug/ens1f0")).unwrap(),
        "12\n"
    );
    assert!(hotplug::finished(&h.root, &name("ens1f0"), Some(12)));
    assert!(!hotplug::finished(&h.root, &name("ens1f0"), Some(13)));
    // Nothing was asked of udev.
    let uevent = h.path("/sys/devices/pci0000:00/0000:01:00.0/net/ens1f0/uevent");
    assert_eq!(std::fs::read_to_string(uevent).unwrap(), "");
    hotplug::begin(&h.root, &name("ens1f0"), false).unwrap();
    assert!(!hotplug::finished(&h.root, &name("ens1f0"), Some(12)));
}

#[test]
fn stage_start_leaves_a_bonded_port_alone() {
    let h = pf_host();
    let lag = h.plan.lags[0].clone();
    enslave_to_bond0(&h);
    // No bus is asked (none exists here); the marker is still forgotten.
    h.write("/run/vflag/hotplug/ens1f0", "12\n");
    let start = hotplug::stage_start(
        &h.root,
        &lag,
        &name("ens1f0"),
        false,
        Duration::from_secs(1),
    );
    assert!(start.begin.is_ok());
    assert!(
        matches!(&start.hold, Ok(vflag::bus::Outcome::Skipped(why)) if why.contains("bond0")),
        "{start:?}"
    );
    assert!(!h.path("/run/vflag/hotplug/ens1f0").exists());
}

/// A stand-in for udevd: when "change" is written to the uevent file, re-run the decision
/// (as the rule's IMPORT{program} would) and rewrite the database from it.
fn fake_udevd(h: &Host, delay: Duration) -> std::thread::JoinHandle<bool> {
    let uevent = h.path("/sys/devices/pci0000:00/0000:01:00.0/net/ens1f0/uevent");
    let db = h.path("/run/udev/data/n12");
    let root = h.root.clone();
    let plan = h.plan.clone();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if std::fs::read_to_string(&uevent).unwrap_or_default().trim() == "change" {
                std::thread::sleep(delay);
                let ev = UdevEvent {
                    name: "ens1f0".into(),
                    devpath: None,
                    ifindex: Some(12),
                };
                let props = hotplug::udev_import_event(&root, &plan, &ev);
                let text: String = props.iter().map(|(k, v)| format!("E:{k}={v}\n")).collect();
                std::fs::write(&db, format!("I:1234\n{text}G:systemd\n")).unwrap();
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    })
}

fn held_db(h: &Host) {
    let ev = UdevEvent {
        name: "ens1f0".into(),
        devpath: None,
        ifindex: Some(12),
    };
    let props = hotplug::udev_import_event(&h.root, &h.plan, &ev);
    assert_eq!(get(&props, "VFLAG_HOLD"), Some("1"));
    let text: String = props.iter().map(|(k, v)| format!("E:{k}={v}\n")).collect();
    h.write("/run/udev/data/n12", &format!("I:1234\n{text}G:systemd\n"));
    assert!(hotplug::held_in_udev_db(&h.root, 12));
}

#[test]
fn finish_clears_the_hold_from_the_udev_database() {
    let h = pf_host();
    held_db(&h);
    let udevd = fake_udevd(&h, Duration::from_millis(100));
    let r = hotplug::finish(&h.root, &name("ens1f0"), Duration::from_secs(3)).unwrap();
    assert!(udevd.join().unwrap(), "change was written");
    match r {
        Finish::Released { after } => assert!(after >= Duration::from_millis(100), "{after:?}"),
        other => panic!("{other:?}"),
    }
    assert!(!hotplug::held_in_udev_db(&h.root, 12));
    let db = std::fs::read_to_string(h.path("/run/udev/data/n12")).unwrap();
    assert!(
        db.contains("E:VFLAG_PF=1") && !db.contains("NM_UNMANAGED"),
        "{db}"
    );
}

/// The boot race seen in the guest (fault-networkd-no-ovs): an event udev is still running
/// (the rename's `move`, the set-up having started as soon as the PF's database entry existed)
/// took its decision while the PF was pending and writes its hold into the database after
/// finish() looked. finish() must still leave the PF unheld: while udev is busy it asks for a
/// `change` after the marker, which udev runs after the event in flight.
#[test]
fn finish_clears_a_hold_written_by_an_event_still_in_flight() {
    let h = pf_host();
    h.write("/run/udev/data/n12", "I:1234\nE:VFLAG_PF=1\nG:systemd\n"); // the add event: no hold
    h.write("/run/udev/queue", ""); // udev is busy
    let ev = UdevEvent {
        name: "ens1f0".into(),
        devpath: None,
        ifindex: Some(12),
    };
    let late = hotplug::udev_import_event(&h.root, &h.plan, &ev); // decided before the marker
    assert_eq!(get(&late, "VFLAG_HOLD"), Some("1"));
    let text: String = late.iter().map(|(k, v)| format!("E:{k}={v}\n")).collect();
    let (db, tmp) = (h.path("/run/udev/data/n12"), h.path("/run/udev/data/.n12"));
    let inflight = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        std::fs::write(&tmp, format!("I:1234\n{text}G:systemd\n")).unwrap();
        std::fs::rename(&tmp, &db).unwrap();
    });
    let udevd = fake_udevd(&h, Duration::from_millis(300));
    let r = hotplug::finish(&h.root, &name("ens1f0"), Duration::from_secs(3)).unwrap();
    inflight.join().unwrap();
    assert!(
        udevd.join().unwrap(),
        "no change was asked after the marker"
    );
    assert!(
        !hotplug::held_in_udev_db(&h.root, 12),
        "the PF is left held"
    );
    assert_eq!(r, Finish::NotHeld);
}

/// No hold seen while udev is busy (at boot: the representors' events): the `change` is asked
/// for and the early stage ends without waiting for udev to run it (it waited up to 2 s, on
/// every boot, in front of network-pre.target). The database is still the old one when
/// finish() returns; udev clears any late hold afterwards.
#[test]
fn finish_does_not_wait_for_a_busy_udev_when_no_hold_was_seen() {
    let h = pf_host();
    let before = "I:1234\nE:VFLAG_PF=1\nG:systemd\n";
    h.write("/run/udev/data/n12", before);
    h.write("/run/udev/queue", "");
    let udevd = fake_udevd(&h, Duration::from_millis(1500));
    let r = hotplug::finish(&h.root, &name("ens1f0"), Duration::from_secs(3)).unwrap();
    let db_at_return = std::fs::read_to_string(h.path("/run/udev/data/n12")).unwrap();
    assert_eq!(r, Finish::NotHeld);
    assert_eq!(
        db_at_return, before,
        "finish() waited for udev to run its change"
    );
    assert!(
        udevd.join().unwrap(),
        "no change was asked after the marker"
    );
}

/// With udev idle and no hold in the database nothing is asked of udev (no cost at boot).
#[test]
fn finish_asks_nothing_of_an_idle_udev() {
    let h = pf_host();
    h.write("/run/udev/data/n12", "I:1234\nE:VFLAG_PF=1\n");
    let r = hotplug::finish(&h.root, &name("ens1f0"), Duration::from_secs(1)).unwrap();
    assert_eq!(r, Finish::NotHeld);
    let uevent = h.path("/sys/devices/pci0000:00/0000:01:00.0/net/ens1f0/uevent");
    assert_eq!(std::fs::read_to_string(uevent).unwrap(), "");
}

#[test]
fn finish_is_bounded_when_udev_does_not_answer() {
    let h = pf_host();
    held_db(&h);
    let t0 = Instant::now();
    let r = hotplug::finish(&h.root, &name("ens1f0"), Duration::from_millis(300)).unwrap();
    assert_eq!(r, Finish::StillHeld);
    assert!(t0.elapsed() < Duration::from_secs(2));
    // The marker is written anyway: the next udev event for this netdev will not hold it.
    assert!(hotplug::finished(&h.root, &name("ens1f0"), Some(12)));
}

#[test]
fn finish_fails_cleanly_for_a_missing_netdev() {
    let h = host(AUTO);
    assert!(hotplug::finish(&h.root, &name("ens1f0"), Duration::from_millis(10)).is_err());
    // The marker still says "finished this boot": a netdev that comes back is a re-add (not
    // held by a vflag@ that would not run again), not a pending PF.
    assert_eq!(
        std::fs::read_to_string(h.path("/run/vflag/hotplug/ens1f0")).unwrap(),
        "0\n"
    );
    assert_eq!(
        hotplug::state(&h.root, &name("ens1f0"), Some(12)),
        hotplug::PfState::Readded
    );
}

// --- udev-rules/*.rules: syntax-level check ---------------------------------------------------

const MATCH_KEYS: &[&str] = &[
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "NAME",
    "SYMLINK",
    "SUBSYSTEM",
    "DRIVER",
    "ATTR",
    "SYSCTL",
    "KERNELS",
    "SUBSYSTEMS",
    "DRIVERS",
    "ATTRS",
    "TAGS",
    "ENV",
    "CONST",
    "TAG",
    "TEST",
    "PROGRAM",
    "RESULT",
];
const ASSIGN_KEYS: &[&str] = &[
    "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG", "RUN",
    "LABEL", "GOTO", "IMPORT", "OPTIONS",
];

/// Split one rule line into (key, attr, op, value) tokens, as udev's parser does:
/// `KEY[{attr}]` OP `"value"`, separated by commas.
/// One rule token: key, `{attr}`, operator, value.
type Token = (String, Option<String>, String, String);

fn tokens(line: &str) -> Result<Vec<Token>, String> {
    let mut out = vec![];
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .ok_or("no operator")?;
        let key = rest[..key_end].to_string();
        rest = &rest[key_end..];
        let mut attr = None;
        if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').ok_or("unclosed {")?;
            attr = Some(r[..end].to_string());
            rest = &r[end + 1..];
        }
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("bad operator after {key}"))?;
        rest = rest[op.len()..]
            .strip_prefix('"')
            .ok_or_else(|| format!("{key}: value not quoted"))?;
        let end = rest
            .find('"')
            .ok_or_else(|| format!("{key}: unterminated value"))?;
        let value = rest[..end].to_string();
        rest = rest[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".into());
            }
        } else if !rest.is_empty() {
            return Err(format!("missing comma after {key}"));
        }
        out.push((key, attr, op.to_string(), value));
    }
    Ok(out)
}

fn rule_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("udev-rules");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    v.sort();
    v
}

#[test]
fn udev_rules_parse_and_gotos_resolve() {
    let files = rule_files();
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut gotos = vec![];
        let mut labels = vec![];
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            assert!(
                !line.ends_with('\\'),
                "{}:{}: continuation lines not used here",
                f.display(),
                n + 1
            );
            let toks =
                tokens(line).unwrap_or_else(|e| panic!("{}:{}: {e}: {line}", f.display(), n + 1));
            for (key, attr, op, value) in toks {
                let is_match = op == "==" || op == "!=";
                let known = if is_match { MATCH_KEYS } else { ASSIGN_KEYS };
                assert!(
                    known.contains(&key.as_str()),
                    "{}:{}: {key} {op}",
                    f.display(),
                    n + 1
                );
                let needs_attr =
                    ["ATTR", "ATTRS", "ENV", "IMPORT", "SYSCTL"].contains(&key.as_str());
                assert_eq!(
                    attr.is_some(),
                    needs_attr,
                    "{}:{}: {key}",
                    f.display(),
                    n + 1
                );
                if key == "GOTO" {
                    gotos.push(value.clone());
                }
                if key == "LABEL" {
                    labels.push(value.clone());
                }
                if key == "IMPORT" {
                    assert_eq!(attr.as_deref(), Some("program"));
                    assert!(
                        [
                            "/usr/bin/vflag udev-import $name",
                            "/usr/bin/vflag udev-name $kernel"
                        ]
                        .contains(&value.as_str()),
                        "the CLI contract: {value}"
                    );
                }
                if key == "ENV" && attr.as_deref() == Some("SYSTEMD_WANTS") {
                    assert_eq!(op, "+=", "append, never replace other wants");
                }
            }
        }
        for g in &gotos {
            assert!(labels.contains(g), "{}: GOTO {g} has no LABEL", f.display());
        }
    }
}

/// The vflag rules run after 80-net-setup-link.rules ($name is final) and before
/// 99-systemd.rules.
#[test]
fn udev_rules_are_ordered_after_net_setup_link() {
    for f in rule_files() {
        let base = f.file_name().unwrap().to_string_lossy().into_owned();
        let prio: u32 = base.split('-').next().unwrap().parse().unwrap();
        if base.contains("vflag") && std::fs::read_to_string(&f).unwrap().contains("udev-import") {
            assert!((81..99).contains(&prio), "{base}");
        }
    }
}

/// What the rule makes of udev-import's output: the wanted unit name.
#[test]
fn systemd_wants_names_the_early_unit() {
    let h = host(AUTO);
    let dp = h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 5, None);
    let p = props(&h, "ens1f0", Some(&dp), Some(5));
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("udev-rules/81-vflag.rules"),
    )
    .unwrap();
    let line = text.lines().find(|l| l.contains("SYSTEMD_WANTS")).unwrap();
    let (_, _, _, value) = tokens(line)
        .unwrap()
        .into_iter()
        .find(|(k, a, _, _)| k == "ENV" && a.as_deref() == Some("SYSTEMD_WANTS"))
        .unwrap();
    let unit = value.replace("$env{VFLAG_UNIT}", get(&p, "VFLAG_UNIT").unwrap());
    assert_eq!(unit, "vflag@ens1f0.service");
    assert_eq!(
        unit,
        format!("vflag@{}.service", name("ens1f0").unit_instance())
    );
}

/// While the early stage is due, the rule also wants the late stage udev-import names.
#[test]
fn systemd_wants_names_the_late_unit_while_the_early_stage_is_due() {
    let h = host(AUTO);
    let dp = h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 5, None);
    hotplug::arm(&h.root).unwrap();
    let p = props(&h, "ens1f0", Some(&dp), Some(5));
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("udev-rules/81-vflag.rules"),
    )
    .unwrap();
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("VFLAG_LATE_UNIT"))
        .expect("a rule for VFLAG_LATE_UNIT");
    let toks = tokens(line).unwrap();
    let (_, _, _, pattern) = toks
        .iter()
        .find(|(k, a, _, _)| k == "ENV" && a.as_deref() == Some("VFLAG_LATE_UNIT"))
        .unwrap();
    let (_, _, op, value) = toks
        .iter()
        .find(|(k, a, _, _)| k == "ENV" && a.as_deref() == Some("SYSTEMD_WANTS"))
        .unwrap();
    assert_eq!(op, "+=", "appends, never replaces the early unit");
    let late = get(&p, "VFLAG_LATE_UNIT").unwrap();
    assert_eq!(late, "vflag-rebind@ens1f0.service");
    assert_eq!(pattern, "vflag-rebind@?*.service");
    assert_eq!(value.replace("$env{VFLAG_LATE_UNIT}", late), late);
}

/// Seen in a 64-VF boot (bench-boot-vflag-64): udev was still busy with the representors'
/// events when the early stage's UDEV_WAIT ran out, NetworkManager started with the PF held and
/// never took it into the bond. The late stage finds the stale hold and clears it.
#[test]
fn late_stage_releases_a_hold_left_by_the_early_stage() {
    let h = pf_host();
    let mut lag = h.plan.lags[0].clone();
    lag.network_stack = vflag::config::NetworkStack::None;
    held_db(&h);
    // The early stage ended with udev busy: marker written, hold still in the database.
    h.write("/run/vflag/hotplug/ens1f0", "12\n");
    let udevd = fake_udevd(&h, Duration::from_millis(50));
    let end = hotplug::release_stale_hold(&h.root, &lag, &name("ens1f0"), Duration::from_secs(1))
        .expect("a stale hold is released");
    assert!(udevd.join().unwrap(), "change was written");
    assert!(
        matches!(end.finish, Ok(Finish::Released { .. })),
        "{:?}",
        end.finish
    );
    assert!(!hotplug::held_in_udev_db(&h.root, 12));
}

/// Seen in cx-slow-switchdev-nm (2 × 64 VFs): udev cleared the hold only after
/// NetworkManager had found the PF, and NetworkManager never took it into the bond. A finished
/// PF in no bond is handed over; one in its bond is left alone.
#[test]
fn late_stage_hands_over_a_finished_pf_in_no_bond() {
    let h = pf_host();
    let mut lag = h.plan.lags[0].clone();
    lag.network_stack = vflag::config::NetworkStack::None;
    h.write("/run/vflag/hotplug/ens1f0", "12\n");
    let end = hotplug::release_stale_hold(&h.root, &lag, &name("ens1f0"), Duration::from_secs(1))
        .expect("a finished PF in no bond is handed over");
    assert!(
        matches!(end.finish, Ok(Finish::NotHeld)),
        "{:?}",
        end.finish
    );
    enslave_to_bond0(&h);
    assert!(
        hotplug::release_stale_hold(&h.root, &lag, &name("ens1f0"), Duration::from_secs(1))
            .is_none()
    );
}

/// A hot-plugged PF still being set up (no marker) keeps its hold: the late stage leaves it.
#[test]
fn late_stage_leaves_the_hold_of_a_set_up_in_progress() {
    let h = pf_host();
    let lag = h.plan.lags[0].clone();
    held_db(&h);
    assert!(
        hotplug::release_stale_hold(&h.root, &lag, &name("ens1f0"), Duration::from_secs(1))
            .is_none()
    );
    assert!(hotplug::held_in_udev_db(&h.root, 12));
    let uevent = h.path("/sys/devices/pci0000:00/0000:01:00.0/net/ens1f0/uevent");
    assert_eq!(
        std::fs::read_to_string(uevent).unwrap(),
        "",
        "nothing asked of udev"
    );
}

// --- the boot form of the protocol -------------------------------------------------------------

/// At boot (network-pre.target not reached, no stack running) the early stages begin in the
/// boot form: an event udev runs for a PF after a set-up began (seen: the rename's `move` of
/// the other PF) finds no hold to write, so no stage waits for udev at its end in front of
/// network-pre.target. A PF that gave up absent is still held when it comes; the late stage
/// ends the boot form and every PF whose early stage has not finished is held again.
#[test]
fn at_boot_no_pf_is_held_until_the_late_stage_arms_except_an_absent_one() {
    let h = host(
        "[lag bond0]\npfs = ens1f0 ens1f1\nvfs = 4\n\n[lag bond1]\npfs = ens2f0 ens2f1\nvfs = 4\n",
    );
    let dp0 = h.netdev("0000:01:00.0", "ens1f0", "ens1f0", 12, Some("p0"));
    let dp1 = h.netdev("0000:01:00.1", "ens1f1", "ens1f1", 13, Some("p1"));
    let held = |n: &str, dp: &str, i: u32| {
        get(&props(&h, n, Some(dp), Some(i)), "VFLAG_HOLD") == Some("1")
    };

    hotplug::begin(&h.root, &name("ens1f0"), true).unwrap();
    assert!(!held("ens1f0", &dp0, 12), "the PF being set up");
    assert!(
        !held("ens1f1", &dp1, 13),
        "the other PF, whose stage has not begun"
    );
    let p = props(&h, "ens1f1", Some(&dp1), Some(13));
    assert_eq!(get(&p, "VFLAG_UNIT"), Some("vflag@ens1f1.service"));
    assert_eq!(get(&p, "NM_UNMANAGED"), None);

    // bond1's NIC is absent: its stage gives up; when it comes it is a hot-plug, held.
    hotplug::mark_absent(&h.root, &name("ens2f0"), true).unwrap();
    let dp2 = h.netdev("0000:02:00.0", "ens2f0", "ens2f0", 20, Some("p0"));
    assert!(
        held("ens2f0", &dp2, 20),
        "an absent PF that appears is held"
    );
    assert_eq!(
        get(
            &props(&h, "ens2f0", Some(&dp2), Some(20)),
            "VFLAG_LATE_UNIT"
        ),
        Some("vflag-rebind@ens2f0.service")
    );
    // Another stage beginning at boot does not undo that.
    hotplug::begin(&h.root, &name("ens1f1"), true).unwrap();
    assert!(held("ens2f0", &dp2, 20));

    hotplug::finish(&h.root, &name("ens1f0"), Duration::from_millis(10)).unwrap();
    assert!(!held("ens1f0", &dp0, 12));
    // The late stage arms: ens1f1's stage has not finished (its unit never got that far).
    hotplug::arm(&h.root).unwrap();
    assert!(
        held("ens1f1", &dp1, 13),
        "after the late stage a pending PF is held"
    );
    assert!(!held("ens1f0", &dp0, 12), "a finished PF is not");
    assert!(held("ens2f0", &dp2, 20));
    // A restart after boot holds again, as before.
    hotplug::begin(&h.root, &name("ens1f0"), false).unwrap();
    assert!(held("ens1f0", &dp0, 12));
}

/// A stage that begins after boot finds the protocol armed and never puts it back in the boot
/// form; one that gives up after boot arms it.
#[test]
fn after_boot_the_protocol_stays_armed() {
    let h = host(AUTO);
    let dp1 = h.netdev("0000:01:00.1", "ens1f1", "ens1f1", 13, Some("p1"));
    hotplug::arm(&h.root).unwrap();
    hotplug::begin(&h.root, &name("ens1f0"), true).unwrap();
    assert_eq!(
        get(&props(&h, "ens1f1", Some(&dp1), Some(13)), "VFLAG_HOLD"),
        Some("1")
    );
    let h = host(AUTO);
    let dp1 = h.netdev("0000:01:00.1", "ens1f1", "ens1f1", 13, Some("p1"));
    hotplug::begin(&h.root, &name("ens1f0"), true).unwrap();
    hotplug::mark_absent(&h.root, &name("ens1f0"), false).unwrap();
    assert_eq!(
        get(&props(&h, "ens1f1", Some(&dp1), Some(13)), "VFLAG_HOLD"),
        Some("1"),
        "a PF given up after boot arms the protocol"
    );
}
