//! Each detector on files in the format and layout its tool writes, with near misses that
//! must stay silent (another interface, a commented or disabled setting, a file the tool
//! ignores).

use super::nm::nm_name_match;
use super::*;
use std::os::unix::fs::PermissionsExt;

/// A root with two PFs: ens3f0 (ifindex 5, 0000:37:00.0) and ens4f0 (ifindex 6, 0000:5e:00.0).
fn host_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, idx, addr, mac) in [
        ("ens3f0", 5, "0000:37:00.0", "24:8A:07:B4:30:8A"),
        ("ens4f0", 6, "0000:5e:00.0", "24:8a:07:b4:30:99"),
    ] {
        let dev = d.path().join(format!("sys/devices/pci0000:00/{addr}"));
        std::fs::create_dir_all(&dev).unwrap();
        let net = d.path().join(format!("sys/class/net/{name}"));
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("ifindex"), format!("{idx}\n")).unwrap();
        std::fs::write(net.join("address"), format!("{}\n", mac.to_lowercase())).unwrap();
        std::os::unix::fs::symlink(&dev, net.join("device")).unwrap();
    }
    d
}

fn put(d: &tempfile::TempDir, path: &str, text: &str, mode: u32) -> PathBuf {
    let p = d.path().join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn link(d: &tempfile::TempDir, path: &str, target: &str) {
    let p = d.path().join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

fn pf(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

/// Findings of one check (passes left out).
fn found<'a>(f: &'a [Finding], check: &str) -> Vec<&'a Finding> {
    f.iter()
        .filter(|x| x.check == check && x.outcome != Outcome::Pass)
        .collect()
}

fn clean(f: &[Finding]) {
    assert!(
        f.len() == 1 && f[0].check == "owners" && f[0].outcome == Outcome::Pass,
        "{f:#?}"
    );
}

/// The seed's early unit, as its write-up defines it.
const MLNX_EARLY: &str = "[Unit]\nDescription=Mellanox VF-LAG early setup\nRequires=sys-subsystem-net-devices-ens3f0.device\nAfter=sys-subsystem-net-devices-ens3f0.device\nBefore=network-pre.target\nRequires=network-pre.target\n\n[Service]\nType=oneshot\nExecStart=/usr/local/bin/mlnx-vflag-early\n\n[Install]\nWantedBy=multi-user.target\n";

#[test]
fn old_mlnx_vflag_units_enabled_fail() {
    let d = host_root();
    let root = Root::new(d.path());
    put(
        &d,
        "/etc/systemd/system/mlnx-vflag-early.service",
        MLNX_EARLY,
        0o644,
    );
    put(
        &d,
        "/etc/systemd/system/mlnx-vflag-final.service",
        &MLNX_EARLY.replace("early", "final"),
        0o644,
    );
    // Installed but not enabled: not an owner.
    assert!(host(&root).is_empty());
    link(
        &d,
        "/etc/systemd/system/multi-user.target.wants/mlnx-vflag-early.service",
        "/etc/systemd/system/mlnx-vflag-early.service",
    );
    // The fix names only what is enabled (systemctl disable fails on a unit that is not there).
    let f = host(&root);
    assert!(
        f[0].hint
            .as_deref()
            .unwrap()
            .starts_with("systemctl disable mlnx-vflag-early.service, then"),
        "{f:#?}"
    );
    link(
        &d,
        "/etc/systemd/system/network-online.target.wants/mlnx-vflag-final.service",
        "/etc/systemd/system/mlnx-vflag-final.service",
    );
    let f = host(&root);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].check, f[0].outcome),
        ("owner-mlnx-vflag", Outcome::Fail)
    );
    assert!(
        f[0].detail
            .contains("mlnx-vflag-early.service and mlnx-vflag-final.service"),
        "{}",
        f[0].detail
    );
    assert!(f[0]
        .detail
        .contains("/etc/systemd/system/multi-user.target.wants/mlnx-vflag-early.service"));
    assert!(f[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("systemctl disable mlnx-vflag-early.service mlnx-vflag-final.service"));
    // They write no sriov_numvfs themselves (their scripts do): no per-PF duplicate.
    clean(&for_pf(&root, &pf("ens3f0")));
}

#[test]
fn masked_old_units_are_no_owner() {
    let d = host_root();
    put(
        &d,
        "/usr/lib/systemd/system/mlnx-vflag-early.service",
        MLNX_EARLY,
        0o644,
    );
    link(
        &d,
        "/etc/systemd/system/multi-user.target.wants/mlnx-vflag-early.service",
        "/usr/lib/systemd/system/mlnx-vflag-early.service",
    );
    link(
        &d,
        "/etc/systemd/system/mlnx-vflag-early.service",
        "/dev/null",
    );
    assert!(host(&Root::new(d.path())).is_empty());
}

#[test]
fn ofed_services_warn_with_instance() {
    let d = host_root();
    link(
        &d,
        "/etc/systemd/system/network.target.wants/mlnx-interface-mgr@ens3f0.service",
        "/usr/lib/systemd/system/mlnx-interface-mgr@.service",
    );
    link(
        &d,
        "/etc/systemd/system/sysinit.target.wants/openibd.service",
        "/usr/lib/systemd/system/openibd.service",
    );
    link(
        &d,
        "/etc/systemd/system/multi-user.target.wants/openibd-other.service",
        "/x",
    );
    let f = host(&Root::new(d.path()));
    let names: Vec<&str> = f
        .iter()
        .map(|x| x.detail.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["openibd.service", "mlnx-interface-mgr@ens3f0.service"],
        "{f:#?}"
    );
    assert!(f
        .iter()
        .all(|x| x.outcome == Outcome::Warn && x.check == "ofed-services"));
}

/// stackhpc.linux.sriov's virtual-function.service.j2 rendered for ens3f0 (Debian).
const STACKHPC_UNIT: &str = "[Unit]\nDescription=Adds virtual functions for ens3f0\nRequires=sys-subsystem-net-devices-ens3f0.device\nAfter=sys-subsystem-net-devices-ens3f0.device\nRequires=network-pre.target\nBefore=network-pre.target\nRequires=systemd-networkd.service\nBefore=systemd-networkd.service\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/sh -c 'echo 8 > /sys/class/net/ens3f0/device/sriov_numvfs'\nRemainAfterExit=yes\n\n[Install]\nWantedBy=network-pre.target\nWantedBy=systemd-networkd.service\n";

#[test]
fn stackhpc_sriov_unit_fails_for_its_pf_only() {
    let d = host_root();
    let root = Root::new(d.path());
    put(
        &d,
        "/etc/systemd/system/virtual-functions-ens3f0.service",
        STACKHPC_UNIT,
        0o644,
    );
    // Written but not enabled: not an owner.
    clean(&for_pf(&root, &pf("ens3f0")));
    for t in ["network-pre.target.wants", "systemd-networkd.service.wants"] {
        link(
            &d,
            &format!("/etc/systemd/system/{t}/virtual-functions-ens3f0.service"),
            "/etc/systemd/system/virtual-functions-ens3f0.service",
        );
    }
    let f = for_pf(&root, &pf("ens3f0"));
    let u = found(&f, "owner-unit");
    assert_eq!(u.len(), 1, "one finding per unit, not per link: {f:#?}");
    assert_eq!(u[0].outcome, Outcome::Fail);
    assert!(u[0].detail.contains("virtual-functions-ens3f0.service (/etc/systemd/system/virtual-functions-ens3f0.service"), "{}", u[0].detail);
    assert!(u[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("on_boot_configuration_enabled: false for ens3f0"));
    clean(&for_pf(&root, &pf("ens4f0")));
}

#[test]
fn hand_written_unit_by_pci_address() {
    let d = host_root();
    let root = Root::new(d.path());
    put(&d, "/etc/systemd/system/vfs.service", "[Service]\nType=oneshot\n# ExecStart=echo 4 > /sys/class/net/ens4f0/device/sriov_numvfs\nExecStart=/bin/sh -c 'echo 4 > /sys/bus/pci/devices/0000:37:00.0/sriov_numvfs'\n", 0o644);
    link(
        &d,
        "/etc/systemd/system/multi-user.target.wants/vfs.service",
        "../vfs.service",
    );
    assert_eq!(found(&for_pf(&root, &pf("ens3f0")), "owner-unit").len(), 1);
    // The commented line naming ens4f0 is no Exec line.
    clean(&for_pf(&root, &pf("ens4f0")));
}

/// What stackhpc.linux.sriov's blockinfile writes (numvfs_driver: udev).
const STACKHPC_RULES: &str = "# BEGIN SRIOV ANSIBLE MANAGED BLOCK\nSUBSYSTEM==\"net\", ACTION==\"add\", KERNEL==\"ens3f0\", RUN+=\"/usr/bin/sh -c 'echo 8 > /sys/class/net/ens3f0/device/sriov_numvfs'\"\n# END ANSIBLE MANAGED BLOCK\n";

#[test]
fn udev_rules_writing_numvfs() {
    let d = host_root();
    let root = Root::new(d.path());
    put(
        &d,
        "/etc/udev/rules.d/70-sriov.rules",
        STACKHPC_RULES,
        0o644,
    );
    let f = for_pf(&root, &pf("ens3f0"));
    let u = found(&f, "owner-udev");
    assert_eq!(u.len(), 1, "{f:#?}");
    assert!(u[0].detail.contains("/etc/udev/rules.d/70-sriov.rules"));
    assert!(u[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("on_boot_configuration_enabled: false for ens3f0"));
    clean(&for_pf(&root, &pf("ens4f0")));
    // The role with on_boot_configuration_enabled: false leaves an empty block; a commented rule.
    put(&d, "/etc/udev/rules.d/70-sriov.rules", "# BEGIN SRIOV ANSIBLE MANAGED BLOCK\n# END ANSIBLE MANAGED BLOCK\n# KERNEL==\"ens3f0\", ATTR{device/sriov_numvfs}=\"8\"\n", 0o644);
    clean(&for_pf(&root, &pf("ens3f0")));
    // A rule matching the attribute only (a reader); a rule for all Mellanox ports (a writer).
    put(
        &d,
        "/usr/lib/udev/rules.d/60-read.rules",
        "SUBSYSTEM==\"net\", ATTR{device/sriov_numvfs}==\"0\", ENV{NO_VFS}=\"1\"\n",
        0o644,
    );
    clean(&for_pf(&root, &pf("ens3f0")));
    put(&d, "/usr/lib/udev/rules.d/61-all.rules", "ACTION==\"add\", SUBSYSTEM==\"net\", \\\n  ATTRS{vendor}==\"0x15b3\", ATTR{device/sriov_numvfs}=\"8\"\n", 0o644);
    assert_eq!(found(&for_pf(&root, &pf("ens4f0")), "owner-udev").len(), 1);
    // ... unless /etc hides it (a same-name link to /dev/null).
    link(&d, "/etc/udev/rules.d/61-all.rules", "/dev/null");
    clean(&for_pf(&root, &pf("ens4f0")));
    // A rule for another device by its PCI path names no PF of ours; ens4f0's by its own does.
    put(&d, "/etc/udev/rules.d/63-pci.rules", "ACTION==\"add\", SUBSYSTEM==\"pci\", RUN+=\"/bin/sh -c 'echo 4 > /sys/bus/pci/devices/0000:5e:00.0/sriov_numvfs'\"\n", 0o644);
    clean(&for_pf(&root, &pf("ens3f0")));
    assert_eq!(found(&for_pf(&root, &pf("ens4f0")), "owner-udev").len(), 1);
    std::fs::remove_file(d.path().join("etc/udev/rules.d/63-pci.rules")).unwrap();
    // KERNEL globs and alternatives.
    put(&d, "/run/udev/rules.d/62-glob.rules", "ACTION==\"add\", KERNEL==\"eth9|ens3f[01]\", RUN+=\"/bin/sh -c 'echo 2 > /sys/class/net/%k/device/sriov_numvfs'\"\n", 0o644);
    assert_eq!(found(&for_pf(&root, &pf("ens3f0")), "owner-udev").len(), 1);
    clean(&for_pf(&root, &pf("ens4f0")));
}

/// A profile as `nmcli connection add type ethernet ifname ens3f0 sriov.total-vfs 8` saves it.
const NM_SRIOV: &str = "[connection]\nid=sriov-ens3f0\nuuid=2b4c6a8e-55c3-4a3f-9a63-0d7b1c2f0a11\ntype=ethernet\ninterface-name=ens3f0\n\n[ethernet]\n\n[sriov]\nautoprobe-drivers=0\ntotal-vfs=8\n\n[ipv4]\nmethod=disabled\n\n[ipv6]\naddr-gen-mode=default\nmethod=disabled\n\n[proxy]\n";

#[test]
fn nm_keyfile_with_sriov_fails() {
    let d = host_root();
    let root = Root::new(d.path());
    let dir = "/etc/NetworkManager/system-connections";
    put(
        &d,
        &format!("{dir}/sriov-ens3f0.nmconnection"),
        NM_SRIOV,
        0o600,
    );
    let f = for_pf(&root, &pf("ens3f0"));
    let n = found(&f, "owner-nm");
    assert_eq!(n.len(), 1, "{f:#?}");
    assert_eq!(n[0].outcome, Outcome::Fail);
    assert!(n[0].detail.contains("\"sriov-ens3f0\" (/etc/NetworkManager/system-connections/sriov-ens3f0.nmconnection, interface-name=ens3f0)"), "{}", n[0].detail);
    assert!(n[0]
        .detail
        .contains("sriov.autoprobe-drivers=0 sriov.total-vfs=8"));
    assert!(n[0]
        .hint
        .as_deref()
        .unwrap()
        .starts_with("nmcli connection modify \"sriov-ens3f0\" remove sriov"));
    clean(&for_pf(&root, &pf("ens4f0")));
}

#[test]
fn nm_keyfile_near_misses() {
    let d = host_root();
    let root = Root::new(d.path());
    let dir = "/etc/NetworkManager/system-connections";
    // NetworkManager ignores a profile others can read; a backup; a bond port without [sriov];
    // a commented [sriov]; a profile of another interface; /run only loads *.nmconnection.
    put(&d, &format!("{dir}/insecure.nmconnection"), NM_SRIOV, 0o644);
    put(
        &d,
        &format!("{dir}/sriov-ens3f0.nmconnection~"),
        NM_SRIOV,
        0o600,
    );
    put(&d, &format!("{dir}/bond0-port-ens3f0.nmconnection"), "[connection]\nid=bond0-port-ens3f0\ntype=ethernet\ninterface-name=ens3f0\nmaster=bond0\nslave-type=bond\n", 0o600);
    put(
        &d,
        &format!("{dir}/commented.nmconnection"),
        &NM_SRIOV.replace("[sriov]", "#[sriov]\n[ethtool]"),
        0o600,
    );
    put(
        &d,
        &format!("{dir}/other.nmconnection"),
        &NM_SRIOV.replace("ens3f0", "ens4f1"),
        0o600,
    );
    put(
        &d,
        "/run/NetworkManager/system-connections/sriov",
        NM_SRIOV,
        0o600,
    );
    put(
        &d,
        &format!("{dir}/ib.nmconnection"),
        &NM_SRIOV
            .replace("type=ethernet", "type=infiniband")
            .replace("interface-name=ens3f0\n", ""),
        0o600,
    );
    clean(&for_pf(&root, &pf("ens3f0")));
    // ... but /etc loads files without the extension, and /usr/lib *.nmconnection.
    put(&d, &format!("{dir}/legacy-name"), NM_SRIOV, 0o600);
    put(
        &d,
        "/usr/lib/NetworkManager/system-connections/x.nmconnection",
        NM_SRIOV,
        0o600,
    );
    assert_eq!(found(&for_pf(&root, &pf("ens3f0")), "owner-nm").len(), 2);
}

#[test]
fn nm_keyfile_bound_by_mac_or_match() {
    let d = host_root();
    let root = Root::new(d.path());
    let dir = "/etc/NetworkManager/system-connections";
    let by_mac = NM_SRIOV.replace("interface-name=ens3f0\n", "").replace(
        "[ethernet]\n",
        "[ethernet]\nmac-address=24:8A:07:B4:30:8A\n",
    );
    put(&d, &format!("{dir}/mac.nmconnection"), &by_mac, 0o600);
    let by_match = NM_SRIOV
        .replace("interface-name=ens3f0\n", "")
        .replace("[ipv4]", "[match]\ninterface-name=ens4*;!ens4f1;\n\n[ipv4]")
        .replace("total-vfs=8", "eswitch-mode=1");
    put(&d, &format!("{dir}/match.nmconnection"), &by_match, 0o600);
    let f = for_pf(&root, &pf("ens3f0"));
    let n = found(&f, "owner-nm");
    assert_eq!(n.len(), 1, "{f:#?}");
    assert!(n[0].detail.contains("mac-address=24:8a:07:b4:30:8a"));
    let f = for_pf(&root, &pf("ens4f0"));
    let n = found(&f, "owner-nm");
    assert_eq!(n.len(), 1, "{f:#?}");
    assert!(n[0].detail.contains("sriov.eswitch-mode=1"));
    // A bond port's MAC is the bond's: the permanent address is used.
    std::fs::create_dir_all(d.path().join("sys/class/net/ens4f0/bonding_slave")).unwrap();
    std::fs::write(
        d.path()
            .join("sys/class/net/ens4f0/bonding_slave/perm_hwaddr"),
        "24:8a:07:b4:30:8a\n",
    )
    .unwrap();
    assert_eq!(found(&for_pf(&root, &pf("ens4f0")), "owner-nm").len(), 2);
}

#[test]
fn nm_ifcfg_with_sriov_keys() {
    let d = host_root();
    let root = Root::new(d.path());
    let dir = "/etc/sysconfig/network-scripts";
    // A bond port as Kayobe's interfaces role writes it: no SR-IOV.
    put(
        &d,
        &format!("{dir}/ifcfg-ens3f0"),
        "DEVICE=ens3f0\nBOOTPROTO=none\nONBOOT=yes\nMASTER=bond0\nSLAVE=yes\nNM_CONTROLLED=yes\n",
        0o644,
    );
    put(
        &d,
        &format!("{dir}/ifcfg-ens3f0.bak"),
        "DEVICE=ens3f0\nSRIOV_TOTAL_VFS=8\n",
        0o644,
    );
    put(
        &d,
        &format!("{dir}/ifcfg-ens4f0"),
        "DEVICE=ens4f0\n#SRIOV_TOTAL_VFS=8\n",
        0o644,
    );
    clean(&for_pf(&root, &pf("ens3f0")));
    clean(&for_pf(&root, &pf("ens4f0")));
    put(&d, &format!("{dir}/ifcfg-ens3f0"), "TYPE=Ethernet\nNAME=ens3f0\nDEVICE=ens3f0\nONBOOT=yes\nSRIOV_TOTAL_VFS=8\nSRIOV_AUTOPROBE_DRIVERS=0\n", 0o644);
    put(
        &d,
        &format!("{dir}/ifcfg-port2"),
        "HWADDR=24:8A:07:B4:30:99\nSRIOV_VF0=\"mac=00:11:22:33:44:55\"\n",
        0o644,
    );
    let n = for_pf(&root, &pf("ens3f0"));
    let n = found(&n, "owner-nm");
    assert_eq!(n.len(), 1);
    assert!(n[0].detail.contains("/etc/sysconfig/network-scripts/ifcfg-ens3f0 for ens3f0 has SRIOV_TOTAL_VFS=8 SRIOV_AUTOPROBE_DRIVERS=0"), "{}", n[0].detail);
    assert_eq!(found(&for_pf(&root, &pf("ens4f0")), "owner-nm").len(), 1);
}

/// systemd's own 99-default.link.
const DEFAULT_LINK: &str = "[Match]\nOriginalName=*\n\n[Link]\nNamePolicy=keep kernel database onboard slot path\nAlternativeNamesPolicy=database onboard slot path\nMACAddressPolicy=persistent\n";

#[test]
fn networkd_link_applied_by_udev() {
    let d = host_root();
    let root = Root::new(d.path());
    put(
        &d,
        "/usr/lib/systemd/network/99-default.link",
        DEFAULT_LINK,
        0o644,
    );
    // A .link with SR-IOV that udev did not apply to the PF (its [Match] did not select it).
    put(
        &d,
        "/etc/systemd/network/10-vfs.link",
        "[Match]\nPermanentMACAddress=24:8a:07:b4:30:99\n\n[Link]\nSR-IOVVirtualFunctions=8\n",
        0o644,
    );
    put(&d, "/run/udev/data/n5", "I:4242\nE:ID_NET_LINK_FILE=/usr/lib/systemd/network/99-default.link\nE:ID_NET_NAME=ens3f0\nG:systemd\n", 0o644);
    clean(&for_pf(&root, &pf("ens3f0")));
    // udev applied it to ens4f0.
    put(
        &d,
        "/run/udev/data/n6",
        "E:ID_NET_LINK_FILE=/etc/systemd/network/10-vfs.link\nE:ID_NET_LINK_FILE_DROPINS=\n",
        0o644,
    );
    let f = for_pf(&root, &pf("ens4f0"));
    let l = found(&f, "owner-networkd");
    assert_eq!(l.len(), 1, "{f:#?}");
    assert_eq!(l[0].outcome, Outcome::Fail);
    assert!(l[0].detail.starts_with("/etc/systemd/network/10-vfs.link (the .link file udev applied to ens4f0) has SR-IOVVirtualFunctions=8"));
    // A drop-in of the default .link with the count; then only VF attributes ([SR-IOV]): warn.
    put(
        &d,
        "/etc/systemd/network/99-default.link.d/vfs.conf",
        "[Link]\n# SR-IOVVirtualFunctions=2\nSR-IOVVirtualFunctions=4\n",
        0o644,
    );
    put(&d, "/run/udev/data/n5", "E:ID_NET_LINK_FILE=/usr/lib/systemd/network/99-default.link\nE:ID_NET_LINK_FILE_DROPINS=/etc/systemd/network/99-default.link.d/vfs.conf\n", 0o644);
    assert_eq!(
        found(&for_pf(&root, &pf("ens3f0")), "owner-networkd")[0].outcome,
        Outcome::Fail
    );
    put(
        &d,
        "/etc/systemd/network/99-default.link.d/vfs.conf",
        "[SR-IOV]\nVirtualFunction=0\nTrust=true\n",
        0o644,
    );
    assert_eq!(
        found(&for_pf(&root, &pf("ens3f0")), "owner-networkd")[0].outcome,
        Outcome::Warn
    );
}

#[test]
fn netplan_sriov_for_the_pf() {
    let d = host_root();
    let root = Root::new(d.path());
    // netplan's examples/sriov.yaml, for ens3f0, plus a count; ens4f0 has only an MTU and a
    // commented count.
    put(&d, "/etc/netplan/60-sriov.yaml", "network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    ens3f0:\n      mtu: 9000\n      embedded-switch-mode: \"switchdev\"\n      virtual-function-count: 8 # all of them\n    enp1s16f1:\n      link: ens3f0\n      addresses : [ \"10.15.98.25/24\" ]\n    ens4f0:\n      mtu: 9000\n      # virtual-function-count: 4\n", 0o600);
    let f = for_pf(&root, &pf("ens3f0"));
    let n = found(&f, "owner-netplan");
    assert_eq!(n.len(), 1, "{f:#?}");
    assert!(n[0].detail.contains("ethernets.ens3f0: embedded-switch-mode: switchdev, virtual-function-count: 8, VF enp1s16f1 (link: ens3f0)"), "{}", n[0].detail);
    clean(&for_pf(&root, &pf("ens4f0")));
    // match + set-name; a VF linking to a PF selected by MAC; a file in /run hides /etc's.
    put(&d, "/run/netplan/60-sriov.yaml", "network:\n  ethernets:\n    pf1:\n      match:\n        macaddress: 24:8a:07:b4:30:99\n      set-name: ens4f0\n    vf1:\n      link: pf1\n", 0o600);
    clean(&for_pf(&root, &pf("ens3f0")));
    assert_eq!(
        found(&for_pf(&root, &pf("ens4f0")), "owner-netplan").len(),
        1
    );
}

#[test]
fn netplan_generated_unit() {
    let d = host_root();
    let root = Root::new(d.path());
    let unit = "[Unit]\nDescription=Apply SR-IOV configuration\nDefaultDependencies=no\nBefore=network-pre.target\nAfter=sys-subsystem-net-devices-ens3f0.device\n\n[Service]\nType=oneshot\nExecStartPre=udevadm control --reload\nExecStartPre=udevadm trigger --action=add --subsystem-match=net\nExecStartPre=udevadm settle\nExecStart=/usr/sbin/netplan apply --sriov-only\n";
    put(
        &d,
        "/run/systemd/generator.late/netplan-sriov-apply.service",
        unit,
        0o644,
    );
    assert_eq!(
        found(&for_pf(&root, &pf("ens3f0")), "owner-netplan").len(),
        1
    );
    clean(&for_pf(&root, &pf("ens4f0")));
}

#[test]
fn globs() {
    assert!(glob("ens3f[01]", "ens3f1"));
    assert!(!glob("ens3f[!01]", "ens3f1"));
    assert!(glob("en*", "ens3f0") && glob("ens?f0", "ens3f0") && !glob("ens4*", "ens3f0"));
    assert!(nm_name_match("ens3*;!ens3f1;", "ens3f0"));
    assert!(!nm_name_match("ens3*;!ens3f0;", "ens3f0"));
    assert!(nm_name_match("!eth0", "ens3f0"));
    assert!(word_in("echo 8 > /sys/class/net/ens3f0/device", "ens3f0"));
    assert!(!word_in("ens3f01 ens3f0-x", "ens3f0"));
}

#[test]
fn ifupdown_allow_hotplug_of_a_pf_warns() {
    let root_dir = host_root();
    let root = Root::new(root_dir.path());
    // Debian's default file: sources interfaces.d; auto stanzas and another port stay silent.
    put(
        &root_dir,
        "/etc/network/interfaces",
        "# allow-hotplug ens3f0\nsource /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n",
        0o644,
    );
    put(
        &root_dir,
        "/etc/network/interfaces.d/bond0",
        "auto bond0\niface bond0 inet manual\n    bond-slaves none\n\nauto ens3f0\niface ens3f0 inet manual\n    bond-master bond0\nallow-hotplug eth9 ens4f0x\n",
        0o644,
    );
    assert!(found(&for_pf(&root, &pf("ens3f0")), "owner-ifupdown").is_empty());
    put(
        &root_dir,
        "/etc/network/interfaces.d/bond0",
        "auto bond0\niface bond0 inet manual\n\nallow-hotplug eth9 ens3f0\niface ens3f0 inet manual\n    bond-master bond0\n",
        0o644,
    );
    let f = for_pf(&root, &pf("ens3f0"));
    let w = found(&f, "owner-ifupdown");
    assert_eq!(w.len(), 1, "{f:?}");
    assert_eq!(w[0].outcome, Outcome::Warn);
    assert!(
        w[0].detail
            .contains("/etc/network/interfaces.d/bond0 has allow-hotplug ens3f0"),
        "{}",
        w[0].detail
    );
    assert!(found(&for_pf(&root, &pf("ens4f0")), "owner-ifupdown").is_empty());
    // source-directory, relative to /etc/network
    put(
        &root_dir,
        "/etc/network/interfaces",
        "source-directory more\n",
        0o644,
    );
    put(
        &root_dir,
        "/etc/network/more/x",
        "allow-hotplug ens4f0\n",
        0o644,
    );
    assert_eq!(
        found(&for_pf(&root, &pf("ens4f0")), "owner-ifupdown").len(),
        1
    );
}
