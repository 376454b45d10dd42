//! Real-kernel proof of the device layer and the stages against netdevsim (+ bonding).
//!
//! This CHANGES the kernel's state (creates netdevsim devices, VFs, switchdev, bonds), so it runs
//! only inside a throw-away guest: `#[ignore]`d on the host and guarded by
//! `VFLAG_TEST_NETDEVSIM=1`. It runs in the default guest suite as the phase `device-netdevsim`
//! of boot-netdevsim (tests/vm/scenarios/device-netdevsim.scenario): tests/vm/run builds this
//! binary (tests/vm/build-host-tests.sh) and the runner adds it to that phase's files; the phase
//! runs it with `--ignored --test-threads=1`
//! after loading netdevsim and bonding (`max_bonds=0`). 2 VFs are within netdevsim's default
//! limit of 4, so no debugfs is needed.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use vflag::config::{EswitchMode as ConfEswitch, Lag, NetworkStack};
use vflag::device::devlink::{
    Devlink, EswitchMode, Handle, ParamValue, CMODE_DRIVERINIT, PARAM_TYPE_U32, PORT_FLAVOUR_PCI_VF,
};
use vflag::device::ethtool::{Ethtool, HW_TC_OFFLOAD};
use vflag::device::net::Kernel;
use vflag::device::repr;
use vflag::device::rtnl::Rtnl;
use vflag::device::sysfs::Pf;
use vflag::device::Error;
use vflag::names::IfName;
use vflag::paths::Root;
use vflag::stages::{self, StageError, Timeouts};

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
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lag(pf: &IfName, vfs: u32) -> Lag {
    Lag {
        name: "bond7".into(),
        source: "/test".into(),
        pfs: vec![pf.clone()],
        vfs,
        pf_channels: Some(4),
        representor_channels: Some(99),
        eswitch: ConfEswitch::Switchdev,
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

/// The early stage on the running kernel, as the unit runs it (default bounds).
fn setup(l: &Lag, pf: &IfName) -> Result<stages::Report, StageError> {
    let mut net = Kernel::open().unwrap();
    stages::setup_with(&Root::new("/"), l, pf, &mut net, &Timeouts::default())
}

/// The late stage on the running kernel (default bounds).
fn rebind(l: &Lag, pf: &IfName) -> Result<stages::Report, StageError> {
    let mut net = Kernel::open().unwrap();
    stages::rebind_with(&Root::new("/"), l, pf, &mut net, &Timeouts::default())
}

/// The port of netdevsim device `id`, by the name it keeps: udev renames a new port (the
/// guest's predictable names), so read the name once udev has processed it (its database entry
/// `/run/udev/data/n<ifindex>` exists), not the kernel's first `eth<N>`.
fn port_of(id: u32) -> IfName {
    let netdir = format!("/sys/bus/netdevsim/devices/netdevsim{id}/net");
    let port = || {
        let e = fs::read_dir(&netdir).ok()?.flatten().next()?;
        Some(e.file_name().to_string_lossy().into_owned())
    };
    // The ifindex stays through a rename; the name is read again once udev is done.
    let ifindex = wait("netdevsim port", || {
        fs::read_to_string(format!("{netdir}/{}/ifindex", port()?)).ok()
    });
    // udev writes the db entry with ID_RENAMING=1 *before* it renames the port (the name read
    // then is still eth<N>); the entry without it is written once the rename is done.
    let db = format!("/run/udev/data/n{}", ifindex.trim());
    wait("udev to process the port", || {
        let entry = fs::read_to_string(&db).ok()?;
        (!entry.lines().any(|l| l == "E:ID_RENAMING=1")).then_some(())
    });
    let name = port().expect("the port is still there");
    IfName::new(&name).unwrap()
}

#[test]
#[ignore = "changes kernel state: runs in the guest, phase device-netdevsim"]
// Long on purpose: one story told in order, each step building on the state the last one left.
fn netdevsim_setup_and_rebind_on_a_real_kernel() {
    assert_eq!(
        std::env::var("VFLAG_TEST_NETDEVSIM").as_deref(),
        Ok("1"),
        "guest only"
    );
    assert!(
        Path::new("/sys/bus/netdevsim/new_device").exists(),
        "netdevsim module not loaded"
    );
    write("/sys/bus/netdevsim/new_device", "17 1 8");
    let pf = port_of(17);
    let root = Root::new("/");
    eprintln!("PF {pf}");

    // sysfs model
    let dev = Pf::open(&root, &pf).unwrap();
    let h = dev.handle();
    assert_eq!(h.to_string(), "netdevsim/netdevsim17");
    assert_eq!(dev.totalvfs().unwrap(), None);
    assert_eq!(dev.numvfs().unwrap(), Some(0));

    // devlink, directly
    let mut dl = Devlink::open().unwrap();
    devlink_params_and_missing_device(&mut dl, &h);

    // the early stage, real kernel
    let l = lag(&pf, 2);
    let r = setup(&l, &pf).unwrap();
    eprintln!("setup: {} {:?}", r.status(), r.warnings);
    assert_eq!(r.status(), "2 VFs, switchdev, offload on, 2 representors");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("99 combined channels requested")),
        "{:?}",
        r.warnings
    );

    let reps = representors_agree(&dev, &pf, &mut dl);
    let mut et = Ethtool::open().unwrap();
    for (_, idx, n) in &reps {
        assert!(et.feature(*idx, HW_TC_OFFLOAD).unwrap().active, "{n}");
        let ch = et.channels(*idx).unwrap();
        assert_eq!(ch.combined, ch.combined_max, "{n}: clamped to max");
    }
    assert_eq!(
        et.channels(dev.ifindex().unwrap()).unwrap().combined,
        Some(4)
    );
    capture_replies(&h, reps[0].1);

    // a restart changes nothing
    let again = setup(&l, &pf).unwrap();
    assert!(!again.changed, "{:?}", again);

    // late stage without a bond: refuses within the bound
    let start = Instant::now();
    let e = rebind(&l, &pf).unwrap_err();
    assert!(matches!(e, StageError::NotBound { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(6));

    // a real bond: active-backup with the PF
    write("/sys/class/net/bonding_masters", "+vfbond7");
    write("/sys/class/net/vfbond7/bonding/mode", "active-backup");
    write("/sys/class/net/vfbond7/bonding/slaves", &format!("+{pf}"));
    let mut rt = Rtnl::open().unwrap();
    let link = rt.link(dev.ifindex().unwrap()).unwrap();
    assert!(link.is_slave() && link.master.is_some(), "{link:?}");

    // enslaved: another VF count is refused and nothing changes; the same plan is a no-op
    let e = setup(&lag(&pf, 3), &pf).unwrap_err();
    assert!(matches!(e, StageError::Refused { .. }), "{e}");
    assert_eq!(
        fs::read_to_string(dev.dev_dir.join("sriov_numvfs"))
            .unwrap()
            .trim(),
        "2"
    );
    let noop = setup(&l, &pf).unwrap();
    assert!(!noop.changed);

    let r = rebind(&l, &pf).unwrap();
    eprintln!("rebind: {}", r.status());
    assert_eq!(r.bond.as_deref(), Some("vfbond7 active-backup"));
    assert_eq!(r.lag.as_deref(), Some("not observable"));

    // a bond mode VF-LAG cannot use
    write("/sys/class/net/vfbond7/bonding/slaves", &format!("-{pf}"));
    write("/sys/class/net/vfbond7/bonding/mode", "balance-rr");
    write("/sys/class/net/vfbond7/bonding/slaves", &format!("+{pf}"));
    let e = rebind(&l, &pf).unwrap_err();
    assert!(e.to_string().contains("balance-rr"), "{e}");
    eprintln!("VM-TEST-OK");
}

/// devlink directly: a param read, the PARAM_SET encoding (netdevsim's `max_macs` is driverinit
/// only: the value is stored until a reload, an out-of-range one refused) and a missing device
/// reported as ENODEV.
fn devlink_params_and_missing_device(dl: &mut Devlink, h: &Handle) {
    assert_eq!(dl.eswitch_mode(h).unwrap(), EswitchMode::Legacy);
    let p = dl.param(h, "max_macs").unwrap();
    assert_eq!(p.kind, PARAM_TYPE_U32);
    eprintln!("param {p:?}");
    assert!(!p.values.is_empty());
    assert!(
        matches!(
            dl.set_param(h, "max_macs", "16"),
            Err(Error::Unsupported(_))
        ),
        "driverinit only"
    );
    // PARAM_SET encoding against the kernel: the driverinit value is stored until a reload.
    let before = p.value(CMODE_DRIVERINIT).cloned().unwrap();
    assert_eq!(
        dl.set_param_in(h, "max_macs", "16", CMODE_DRIVERINIT)
            .unwrap(),
        Some(before)
    );
    assert_eq!(
        dl.param(h, "max_macs").unwrap().value(CMODE_DRIVERINIT),
        Some(&ParamValue::U32(16))
    );
    let e = dl
        .set_param_in(h, "max_macs", "70000000000", CMODE_DRIVERINIT)
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let missing = Handle {
        bus: "netdevsim".into(),
        dev: "netdevsim99".into(),
    };
    let e = dl.eswitch_mode(&missing).unwrap_err();
    eprintln!("missing device: {e}");
    assert_eq!(e.errno(), Some(19), "{e}");
}

/// An independent look at the set-up: the representors by sysfs names, the devlink port dump
/// and the sysfs fallback all agree. Returns (port name, ifindex, netdev name), sorted.
fn representors_agree(dev: &Pf, pf: &IfName, dl: &mut Devlink) -> Vec<(String, u32, String)> {
    assert_eq!(
        fs::read_to_string(dev.dev_dir.join("sriov_numvfs"))
            .unwrap()
            .trim(),
        "2"
    );
    let switch_id = fs::read_to_string(format!("/sys/class/net/{pf}/phys_switch_id")).unwrap();
    let mut reps = vec![];
    for e in fs::read_dir("/sys/class/net").unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let port = fs::read_to_string(e.path().join("phys_port_name")).unwrap_or_default();
        let sw = fs::read_to_string(e.path().join("phys_switch_id")).unwrap_or_default();
        if sw == switch_id && port.trim().starts_with("pf0vf") {
            let idx: u32 = fs::read_to_string(e.path().join("ifindex"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            reps.push((port.trim().to_string(), idx, n));
        }
    }
    reps.sort();
    assert_eq!(
        reps.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["pf0vf0", "pf0vf1"]
    );
    let ports = dl.ports(&dev.handle()).unwrap();
    for (port, idx, n) in &reps {
        let vf: u16 = port.trim_start_matches("pf0vf").parse().unwrap();
        assert!(
            ports.iter().any(|p| p.flavour == Some(PORT_FLAVOUR_PCI_VF)
                && p.vf == Some(vf)
                && p.netdev_ifindex == Some(*idx)),
            "{port} #{idx} {n} not in {ports:?}"
        );
    }
    // The sysfs fallback finds the same representors as the devlink port dump.
    let by_sysfs: Vec<(u32, u32)> = repr::from_sysfs(dev)
        .unwrap()
        .iter()
        .map(|r| (r.vf, r.ifindex))
        .collect();
    let by_devlink: Vec<(u32, u32)> = repr::from_devlink_ports(&ports)
        .iter()
        .map(|r| (r.vf, r.ifindex))
        .collect();
    eprintln!("representors: sysfs {by_sysfs:?} devlink {by_devlink:?}");
    assert_eq!(by_sysfs.len(), 2);
    assert_eq!(by_sysfs, by_devlink);
    reps
}

/// Print raw reply payloads as `CAPTURE <name> <hex>` lines, the source of the fixtures in
/// tests/device_captured_replies.rs (decoded there on any host).
fn capture_replies(h: &Handle, rep_ifindex: u32) {
    use vflag::device::{devlink, ethtool, genl::Family, nl::NLM_F_DUMP};
    /// One request; a dump prints every reply, a get its one reply.
    fn capture(f: &mut Family, flags: u16, payload: &[u8], name: &str) {
        let r = f.conn.request(f.id, flags, payload, "capture").unwrap();
        let n = if flags == NLM_F_DUMP { r.msgs.len() } else { 1 };
        for m in &r.msgs[..n] {
            let hex: String = m.payload.iter().map(|x| format!("{x:02x}")).collect();
            println!("CAPTURE {name} {hex}");
        }
    }
    let mut dl = Family::open("devlink").unwrap();
    capture(
        &mut dl,
        0,
        &devlink::eswitch_get_payload(h),
        "devlink_eswitch_get",
    );
    capture(
        &mut dl,
        NLM_F_DUMP,
        &devlink::port_dump_payload(),
        "devlink_port",
    );
    let max_macs = devlink::param_get_payload(h, "max_macs");
    capture(&mut dl, 0, &max_macs, "devlink_param_max_macs");
    let mut et = Family::open("ethtool").unwrap();
    let features = ethtool::features_get_payload(rep_ifindex);
    capture(&mut et, 0, &features, "ethtool_features_rep");
    let channels = ethtool::channels_get_payload(rep_ifindex);
    capture(&mut et, 0, &channels, "ethtool_channels_rep");
}

/// Two PFs (netdevsim devices 21 and 22, one devlink instance each, as mlx5 has per PF) set
/// up in parallel threads, bonded together (802.3ad), then the late stage for both.
#[test]
#[ignore = "changes kernel state: runs in the guest, phase device-netdevsim"]
fn netdevsim_two_pfs_in_parallel_then_one_bond() {
    assert_eq!(
        std::env::var("VFLAG_TEST_NETDEVSIM").as_deref(),
        Ok("1"),
        "guest only"
    );
    let mut pfs = vec![];
    for id in [21, 22] {
        write("/sys/bus/netdevsim/new_device", &format!("{id} 1 4"));
        pfs.push(port_of(id));
    }
    let mut l = lag(&pfs[0], 3);
    l.pfs = pfs.clone();
    let root = Root::new("/");
    let handles: Vec<_> = pfs
        .iter()
        .map(|pf| {
            let (l, pf) = (l.clone(), pf.clone());
            std::thread::spawn(move || setup(&l, &pf))
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap().unwrap();
        eprintln!("parallel setup {}: {}", r.pf, r.status());
        assert_eq!(r.status(), "3 VFs, switchdev, offload on, 3 representors");
    }
    // Each PF's representors are its own: no overlap between the two devices.
    let mut all = vec![];
    for pf in &pfs {
        let dev = Pf::open(&root, pf).unwrap();
        let reps = repr::from_sysfs(&dev).unwrap();
        assert_eq!(reps.len(), 3, "{pf}");
        all.extend(reps.into_iter().map(|r| r.ifindex));
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6);

    write("/sys/class/net/bonding_masters", "+vfbond8");
    write("/sys/class/net/vfbond8/bonding/mode", "802.3ad");
    write(
        "/sys/class/net/vfbond8/bonding/slaves",
        &format!("+{}", pfs[0]),
    );
    // Only one PF in the bond yet: the late stage waits (bounded), then refuses.
    let e = rebind(&l, &pfs[0]).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("does not contain {}", pfs[1])),
        "{e}"
    );
    write(
        "/sys/class/net/vfbond8/bonding/slaves",
        &format!("+{}", pfs[1]),
    );
    for pf in &pfs {
        let r = rebind(&l, pf).unwrap();
        eprintln!("rebind {pf}: {}", r.status());
        assert_eq!(r.bond.as_deref(), Some("vfbond8 802.3ad"));
    }
    eprintln!("VM-TEST-2-OK");
}
