//! `vflag status` on a real kernel: netdevsim PFs (devlink eswitch, devlink ports as
//! representors, ethtool hw-tc-offload) in a real bond. The netlink half of `status::collect`
//! that the host cannot run (it has no devlink).
//!
//! This CHANGES the kernel's state (netdevsim devices, VFs, switchdev, a bond), so it runs only
//! inside a throw-away guest: `#[ignore]`d, and it needs `VFLAG_TEST_NETDEVSIM=1`. In the guest:
//! `status_vm_netdevsim --ignored --test-threads=1`, with the netdevsim and bonding
//! (`max_bonds=0`) modules loaded, as tests/device_vm_netdevsim.rs. (Note: the third number of
//! netdevsim's `new_device` is the queue count, not VFs; VFs come from `sriov_numvfs`.)
//!
//! How it was run (2026-11-25, kernel 6.12.117+deb12, QEMU TCG, `-M pc -m 1024 -nic none`): a
//! busybox initramfs with this test binary, its shared libraries and the modules psample, tls,
//! netdevsim, bonding, whose /init mounts proc/sys/devtmpfs/debugfs, loads the modules and runs
//! the binary; it passed (status itself took 41-78 ms per call there). The project's harness is
//! tests/vm/.

use std::fs;
use std::time::{Duration, Instant};
use vflag::checks::{Finding, Outcome};
use vflag::config::{EswitchMode as ConfEswitch, Lag, Loaded, NetworkStack, Plan};
use vflag::device::ethtool::{Ethtool, HW_TC_OFFLOAD};
use vflag::device::net::Kernel;
use vflag::device::sysfs::Pf;
use vflag::names::IfName;
use vflag::paths::Root;
use vflag::stages::{self, Timeouts};
use vflag::status;

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

fn row<'a>(f: &'a [Finding], check: &str, pf: &str) -> &'a Finding {
    f.iter()
        .find(|x| x.check == check && x.pf.as_ref().map(IfName::as_str).unwrap_or("") == pf)
        .unwrap_or_else(|| panic!("no {check} for {pf:?} in {f:#?}"))
}

fn show(f: &[Finding]) -> String {
    f.iter()
        .map(|x| {
            format!(
                "{:?} {} {} {}",
                x.outcome,
                x.check,
                x.pf.as_ref().map(IfName::as_str).unwrap_or(""),
                x.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "changes kernel state: run in the VM test bed with VFLAG_TEST_NETDEVSIM=1"]
fn status_of_a_netdevsim_lag_before_and_after_setup() {
    assert_eq!(
        std::env::var("VFLAG_TEST_NETDEVSIM").as_deref(),
        Ok("1"),
        "guest only"
    );
    let mut pfs = vec![];
    for id in [41, 42] {
        write("/sys/bus/netdevsim/new_device", &format!("{id} 1 4"));
        let netdir = format!("/sys/bus/netdevsim/devices/netdevsim{id}/net");
        let name = wait("port", || {
            fs::read_dir(&netdir)
                .ok()?
                .flatten()
                .next()
                .map(|e| e.file_name().to_string_lossy().into_owned())
        });
        pfs.push(IfName::new(&name).unwrap());
    }
    let (a, b) = (pfs[0].to_string(), pfs[1].to_string());
    let lag = Lag {
        name: "vfbond9".into(),
        source: "/test".into(),
        pfs: pfs.clone(),
        vfs: 2,
        pf_channels: Some(4),
        representor_channels: Some(4),
        eswitch: ConfEswitch::Switchdev,
        network_stack: NetworkStack::Auto,
        before: vec![],
        device_timeout: Duration::from_secs(30),
        lag_timeout: Duration::from_secs(5),
        setup_timeout_max: Duration::from_secs(300),
        flow_steering_mode: None,
        lag_port_select_mode: None,
        representor_names: false,
    };
    let loaded = Loaded {
        plan: Plan {
            lags: vec![lag.clone()],
        },
        ..Loaded::default()
    };
    let root = Root::new("/");

    // ---- Before the early stage: no VFs, legacy eswitch (read over devlink), no bond.
    let f = status::collect(&root, &loaded, &[]);
    eprintln!("BEFORE\n{}", show(&f));
    let v = row(&f, "vfs", &a);
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(v.detail, "0 VFs (sriov_numvfs), 2 configured");
    let e = row(&f, "eswitch", &a);
    assert_eq!(e.outcome, Outcome::Fail, "{e:?}");
    assert_eq!(
        e.detail,
        "legacy (devlink netdevsim/netdevsim41), switchdev configured"
    );
    assert_eq!(row(&f, "bond", &b).outcome, Outcome::Fail);

    // ---- The early stage on both, then the bond.
    for pf in &pfs {
        let r = stages::setup_with(
            &root,
            &lag,
            pf,
            &mut Kernel::open().unwrap(),
            &Timeouts::default(),
        )
        .unwrap();
        eprintln!("setup {pf}: {}", r.status());
    }
    write("/sys/class/net/bonding_masters", "+vfbond9");
    write("/sys/class/net/vfbond9/bonding/mode", "802.3ad");
    for pf in &pfs {
        write("/sys/class/net/vfbond9/bonding/slaves", &format!("+{pf}"));
    }
    let start = Instant::now();
    let f = status::collect(&root, &loaded, &[]);
    let took = start.elapsed();
    eprintln!("AFTER ({took:?})\n{}", show(&f));
    for pf in [&a, &b] {
        for c in [
            "vfs",
            "eswitch",
            "pf-offload",
            "representors",
            "rep-offload",
            "bond",
        ] {
            assert_eq!(row(&f, c, pf).outcome, Outcome::Pass, "{c} {pf}: {f:#?}");
        }
        assert!(
            row(&f, "representors", pf)
                .detail
                .ends_with("(devlink ports)"),
            "{f:#?}"
        );
        // netdevsim: VFs exist only as representors; the LAG is not observable.
        assert_eq!(row(&f, "vfs-bound", pf).outcome, Outcome::Skip);
        assert_eq!(row(&f, "lag", pf).outcome, Outcome::Skip);
    }
    for c in ["bond-mode", "bond-members", "bond-bridge"] {
        assert_eq!(row(&f, c, "vfbond9").outcome, Outcome::Pass, "{c}");
    }
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // ---- hw-tc-offload turned off on one representor: named in a failure.
    let dev = Pf::open(&root, &pfs[1]).unwrap();
    let reps = vflag::device::repr::from_sysfs(&dev).unwrap();
    let victim = reps.iter().find(|r| r.vf == 1).unwrap();
    let mut et = Ethtool::open().unwrap();
    et.set_feature(victim.ifindex, HW_TC_OFFLOAD, false)
        .unwrap();
    assert!(!et.feature(victim.ifindex, HW_TC_OFFLOAD).unwrap().active);
    let f = status::collect(&root, &loaded, &[]);
    let r = row(&f, "rep-offload", &b);
    eprintln!("OFFLOAD OFF: {r:?}");
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.detail.ends_with(&format!("{} (VF 1)", victim.name)),
        "{r:?}"
    );
    assert_eq!(
        r.hint.as_deref(),
        Some(format!("ethtool -K {} hw-tc-offload on", victim.name).as_str())
    );
    assert_eq!(row(&f, "rep-offload", &a).outcome, Outcome::Pass);

    // ---- A third interface in the bond (another netdevsim port).
    write("/sys/bus/netdevsim/new_device", "43 1");
    let third = wait("third port", || {
        fs::read_dir("/sys/bus/netdevsim/devices/netdevsim43/net")
            .ok()?
            .flatten()
            .next()
            .map(|e| e.file_name().to_string_lossy().into_owned())
    });
    write(
        "/sys/class/net/vfbond9/bonding/slaves",
        &format!("+{third}"),
    );
    let f = status::collect(&root, &loaded, &[]);
    let m = row(&f, "bond-members", "vfbond9");
    eprintln!("THIRD: {m:?}");
    assert_eq!(m.outcome, Outcome::Fail);
    assert!(m.detail.starts_with(&format!("also has {third}")), "{m:?}");
    eprintln!("VM-STATUS-OK");
}
