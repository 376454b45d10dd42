//! Real-kernel proof of VF handling on real PCI SR-IOV: QEMU's igb (two PFs on separate root
//! ports), igbvf for the VFs, bonding. CHANGES kernel state: `#[ignore]`d and needs
//! `VFLAG_TEST_IGB=1`; run only in a throw-away guest with igb, igbvf and bonding
//! (`max_bonds=0`) loaded: `device_vm_igb --ignored --test-threads=1`.
//! igb has no devlink and a fixed-off hw-tc-offload, so the LAG here is `eswitch = legacy`.
//!
//! How it was run (2026-11-25, kernel 6.12.117+deb12, QEMU TCG): a busybox initramfs holding
//! this test binary (+ the shared libraries `ldd` lists) and the modules from the test-bed
//! image (modules dca, i2c-algo-bit, igb, igbvf, tls, bonding; `-M q35` with two `pcie-root-port`s each holding an `igb` on its own hub), whose /init mounts proc/sys/devtmpfs/debugfs, insmods the modules
//! and runs the binary with the environment variable set; `-kernel <vmlinuz> -initrd <cpio>
//! -nic none -no-reboot`. The project's own harness is tests/vm/.

use std::fs;
use std::time::{Duration, Instant};
use vflag::config::{EswitchMode as ConfEswitch, Lag, NetworkStack};
use vflag::device::ethtool::Ethtool;
use vflag::device::sysfs::Pf;
use vflag::names::IfName;
use vflag::paths::Root;
use vflag::stages::{self, StageError, State, Timeouts};

fn write(p: &str, v: &str) {
    fs::write(p, v).unwrap_or_else(|e| panic!("{p} <- {v:?}: {e}"));
}

fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lag(pfs: &[&IfName], vfs: u32, eswitch: ConfEswitch) -> Lag {
    Lag {
        name: "bond9".into(),
        source: "/test".into(),
        pfs: pfs.iter().map(|p| (*p).clone()).collect(),
        vfs,
        pf_channels: Some(8),
        representor_channels: None,
        eswitch,
        network_stack: NetworkStack::Auto,
        before: vec![],
        device_timeout: Duration::from_secs(5),
        lag_timeout: Duration::from_secs(3),
        setup_timeout_max: Duration::from_secs(300),
        flow_steering_mode: None,
        lag_port_select_mode: None,
        representor_names: false,
    }
}

fn vf_drivers(dev: &Pf) -> Vec<Option<String>> {
    dev.vfs()
        .unwrap()
        .iter()
        .map(|v| v.driver().unwrap())
        .collect()
}

fn net(k: &mut Option<vflag::device::net::Kernel>) -> &mut vflag::device::net::Kernel {
    k.get_or_insert_with(|| vflag::device::net::Kernel::open().unwrap())
}

#[test]
#[ignore = "changes kernel state: run in the VM test bed with VFLAG_TEST_IGB=1"]
fn igb_vfs_unbound_then_rebound_to_their_driver() {
    assert_eq!(
        std::env::var("VFLAG_TEST_IGB").as_deref(),
        Ok("1"),
        "guest only"
    );
    let mut addrs: Vec<String> = fs::read_dir("/sys/bus/pci/drivers/igb")
        .expect("igb loaded")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("0000:"))
        .collect();
    addrs.sort();
    assert_eq!(addrs.len(), 2, "two igb PFs");
    let names: Vec<IfName> = addrs
        .iter()
        .map(|a| {
            let d = format!("/sys/bus/pci/devices/{a}/net");
            let n = wait("igb netdev", || fs::read_dir(&d).ok()?.flatten().next());
            IfName::new(&n.file_name().to_string_lossy()).unwrap()
        })
        .collect();
    let (pf, other) = (&names[0], &names[1]);
    let root = Root::new("/");
    let dev = Pf::open(&root, pf).unwrap();
    eprintln!(
        "PF {pf} = {} ({:?}), other {other}",
        dev.handle(),
        dev.pci_ids().unwrap()
    );
    assert_eq!(dev.handle().to_string(), format!("pci/{}", addrs[0]));
    assert_eq!(dev.totalvfs().unwrap(), Some(7));
    let mut k = None;
    let t = Timeouts::default();

    // Guards that change nothing: too many VFs, two PFs on different cards, no devlink.
    let e = stages::setup_with(
        &root,
        &lag(&[pf], 8, ConfEswitch::Legacy),
        pf,
        net(&mut k),
        &t,
    )
    .unwrap_err();
    assert!(
        matches!(e, StageError::Refused { .. }) && e.to_string().contains("at most 7"),
        "{e}"
    );
    let e = stages::setup_with(
        &root,
        &lag(&[pf, other], 2, ConfEswitch::Legacy),
        pf,
        net(&mut k),
        &t,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not two ports of one NIC"), "{e}");
    let e = stages::setup_with(
        &root,
        &lag(&[pf], 2, ConfEswitch::Switchdev),
        pf,
        net(&mut k),
        &t,
    )
    .unwrap_err();
    eprintln!("switchdev on igb: {e}");
    assert!(matches!(e, StageError::Refused { .. }), "{e}");
    assert_eq!(dev.numvfs().unwrap(), Some(0));

    // 1. VFs that already exist and were bound by autoprobe: unbound, driver remembered.
    write(&format!("{}/sriov_numvfs", dev.dev_dir.display()), "2");
    wait("igbvf to bind both VFs", || {
        let d = vf_drivers(&dev);
        (d.len() == 2 && d.iter().all(|x| x.as_deref() == Some("igbvf"))).then_some(())
    });
    let l2 = lag(&[pf], 2, ConfEswitch::Legacy);
    let r = stages::setup_with(&root, &l2, pf, net(&mut k), &t).unwrap();
    eprintln!("setup 1: {} {:?}", r.status(), r.warnings);
    assert_eq!(vf_drivers(&dev), [None, None]);
    assert_eq!(
        r.offload,
        Some(false),
        "igb: hw-tc-offload off [fixed], a warning in legacy"
    );
    let ch = Ethtool::open()
        .unwrap()
        .channels(dev.ifindex().unwrap())
        .unwrap();
    assert_eq!(ch.combined, ch.combined_max, "8 clamped to the maximum");
    let st = State::load(&root, pf, &dev.handle());
    assert_eq!(
        st.vfs
            .iter()
            .map(|v| v.driver.as_deref())
            .collect::<Vec<_>>(),
        [Some("igbvf"), Some("igbvf")]
    );

    // Late stage refuses without a bond, binds after a valid one.
    let e = stages::rebind_with(&root, &l2, pf, net(&mut k), &t).unwrap_err();
    assert!(matches!(e, StageError::NotBound { .. }), "{e}");
    assert_eq!(vf_drivers(&dev), [None, None]);
    write("/sys/class/net/bonding_masters", "+vfbond9");
    write("/sys/class/net/vfbond9/bonding/mode", "802.3ad");
    write("/sys/class/net/vfbond9/bonding/slaves", &format!("+{pf}"));
    let r = stages::rebind_with(&root, &l2, pf, net(&mut k), &t).unwrap();
    eprintln!("rebind 1: {}", r.status());
    assert_eq!(
        vf_drivers(&dev),
        [Some("igbvf".into()), Some("igbvf".into())]
    );
    assert_eq!(r.bound, Some(2));

    // 2. A different count: 0 then N with autoprobe off, new VFs stay unbound until rebind.
    write("/sys/class/net/vfbond9/bonding/slaves", &format!("-{pf}"));
    let l3 = lag(&[pf], 3, ConfEswitch::Legacy);
    let r = stages::setup_with(&root, &l3, pf, net(&mut k), &t).unwrap();
    eprintln!("setup 2: {} {:?}", r.status(), r.warnings);
    assert_eq!(dev.numvfs().unwrap(), Some(3));
    assert_eq!(dev.autoprobe().unwrap(), Some(false));
    // igbvf would bind within ~2 s if autoprobe were on; look for a while.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(vf_drivers(&dev), [None, None, None]);
    write("/sys/class/net/vfbond9/bonding/slaves", &format!("+{pf}"));
    let r = stages::rebind_with(&root, &l3, pf, net(&mut k), &t).unwrap();
    eprintln!("rebind 2: {}", r.status());
    assert_eq!(dev.autoprobe().unwrap(), Some(true), "autoprobe restored");
    assert_eq!(vf_drivers(&dev), vec![Some("igbvf".to_string()); 3]);
    // A restart of the early stage now (enslaved, configured) is a no-op.
    let r = stages::setup_with(&root, &l3, pf, net(&mut k), &t).unwrap();
    assert!(!r.changed);
    assert_eq!(vf_drivers(&dev), vec![Some("igbvf".to_string()); 3]);
    eprintln!("VM-TEST-OK");
}
