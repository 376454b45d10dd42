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
    let (t, devs, l) = netdevsim_pair();
    t.write("sys/kernel/debug/mlx5/netdevsim11/lag/state", "disabled\n");
    let _k = FakeKernel::spawn(t.dir.path(), &devs, "netdevsim");
    let mut net = FakeNet::new(1);
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
    let done =
        format!("{creating}6,703,6300000,-;netdevsim netdevsim10: Operation mode is single FDB\n");
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
        &format!("{creating}3,703,6300000,-;netdevsim netdevsim10: Failed to create LAG (-5)\n"),
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
