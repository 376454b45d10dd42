//! `vflag status` on the real root of the machine running the tests: real sysfs, the real
//! ethtool netlink family, and devlink where the kernel has it. The host has no SR-IOV NIC, so
//! the configured "PF" is the first netdev with a parent device (virtio on the CI host); the
//! test proves the real-root path runs, asks the kernel, and reports what it cannot see as
//! findings with the error text. It asserts nothing about Open vSwitch (hosts differ), nor about
//! its speed: that is measured in BENCHMARKS.md ("vflag status"), not in a timed test (it took
//! 13 ms alone and once 5.8 s in CI's background step beside a guest boot).

use std::time::{Duration, Instant};
use vflag::checks::Outcome;
use vflag::config::{EswitchMode, Lag, Loaded, NetworkStack, Plan};
use vflag::names::IfName;
use vflag::paths::Root;

fn a_netdev_with_a_device() -> Option<IfName> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new("/sys/class/net")
                .join(n)
                .join("device")
                .exists()
        })
        .collect();
    names.sort();
    names.first().and_then(|n| IfName::new(n).ok())
}

#[test]
fn status_on_the_real_root() {
    let Some(pf) = a_netdev_with_a_device() else {
        eprintln!("SKIPPED: no netdev with a parent device on this host");
        return;
    };
    let sriov = std::path::Path::new("/sys/class/net")
        .join(pf.as_str())
        .join("device/sriov_numvfs")
        .exists();
    let loaded = Loaded {
        plan: Plan {
            lags: vec![Lag {
                name: "bond0".into(),
                source: "/etc/vflag/vflag.conf".into(),
                pfs: vec![pf.clone()],
                vfs: 2,
                pf_channels: Some(1),
                representor_channels: None,
                eswitch: EswitchMode::Switchdev,
                network_stack: NetworkStack::Auto,
                before: vec![],
                device_timeout: Duration::from_secs(30),
                lag_timeout: Duration::from_secs(30),
                setup_timeout_max: Duration::from_secs(300),
                flow_steering_mode: None,
                lag_port_select_mode: None,
                representor_names: false,
            }],
        },
        ..Loaded::default()
    };
    let start = Instant::now();
    let f = vflag::status::collect(&Root::new("/"), &loaded, &[]);
    let took = start.elapsed();
    eprintln!("{took:?}\n{f:#?}");
    let row = |c: &str| {
        f.iter()
            .find(|x| x.check == c && x.pf.as_ref() == Some(&pf))
            .unwrap_or_else(|| panic!("no {c}: {f:#?}"))
    };
    if !sriov {
        let v = row("vfs");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.detail.ends_with("has no SR-IOV (no sriov_numvfs)"),
            "{v:?}"
        );
    }
    // Not an eswitch device: switchdev configured, so a failure that carries the reason.
    let e = row("eswitch");
    assert_eq!(e.outcome, Outcome::Fail, "{e:?}");
    assert!(
        e.detail.starts_with("cannot read the eswitch mode of "),
        "{e:?}"
    );
    // The real ethtool family answered: the PF's offload state is known, not "not observable".
    let o = row("pf-offload");
    assert!(!o.detail.contains("not observable"), "{o:?}");
    assert_ne!(o.outcome, Outcome::Warn, "{o:?}");
    let c = row("pf-channels");
    assert!(!c.detail.contains("not observable"), "{c:?}");
    assert_eq!(
        row("bond").outcome,
        Outcome::Skip,
        "one PF: no bond expected"
    );
}
