//! src/bus against a REAL private `dbus-daemon` and small zbus servers that play
//! systemd-networkd and systemd (tests/bus_fakes): networkd's link reconfiguration, the
//! network-scripts/ifupdown transient units, and which stack wins detection.

mod bus_fakes;

use bus_fakes::*;
use std::sync::{Arc, Mutex};

use vflag::bus::{self, BusError, Outcome, Stack};
use vflag::config::NetworkStack;

#[test]
fn networkd_detected_and_link_reconfigured_by_ifindex() {
    let d = Daemon::start();
    let calls = Arc::new(Mutex::new(vec![]));
    let c = Arc::clone(&calls);
    start_server(&d.address, bus::NETWORKD_NAME, move |b| {
        b.serve_at("/org/freedesktop/network1", FakeNetworkd { calls: c })
    });
    let bus = d.bus();
    assert_eq!(bus::detect(&bus), Stack::Networkd);
    let (t, root) = sysroot(&[
        ("ens1f0", 42, "02:00:00:00:00:01"),
        ("gone0", 666, "02:00:00:00:00:02"),
    ]);
    let out = bus::release(&bus, &root, Stack::Networkd, &name("ens1f0")).unwrap();
    assert_eq!(out, Outcome::Reconfigured { ifindex: 42 });
    assert_eq!(*calls.lock().unwrap(), vec![42]);
    // networkd refuses: the error carries the call.
    let err = bus::release(&bus, &root, Stack::Networkd, &name("gone0")).unwrap_err();
    assert!(err.to_string().contains("ReconfigureLink(666)"), "{err}");
    // No /sys entry: a clear ifindex error, no call.
    let err = bus::release(&bus, &root, Stack::Networkd, &name("nosuch0")).unwrap_err();
    assert!(matches!(err, BusError::Ifindex { .. }), "{err:?}");
    assert_eq!(calls.lock().unwrap().len(), 1);
    // Already a bond port: not reconfigured (that would blip it out of the bond).
    let bond = t.path().join("sys/devices/virtual/net/bond0");
    std::fs::create_dir_all(&bond).unwrap();
    std::os::unix::fs::symlink(&bond, t.path().join("sys/class/net/ens1f0/master")).unwrap();
    let out = bus::release(&bus, &root, Stack::Networkd, &name("ens1f0")).unwrap();
    assert!(
        matches!(&out, Outcome::Skipped(why) if why.contains("bond0")),
        "{out:?}"
    );
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[test]
fn network_scripts_detected_and_ifup_runs_as_transient_unit() {
    let d = Daemon::start();
    let log = start_fake_systemd(&d.address, Some("network.service"));
    let bus = d.bus();
    assert_eq!(bus::detect(&bus), Stack::NetworkScripts);
    let (t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    // No ifcfg and no ifupdown: a clear error.
    let err = bus::release(&bus, &root, Stack::NetworkScripts, &name("ens1f0")).unwrap_err();
    assert!(matches!(err, BusError::NoIfup(_)), "{err:?}");
    touch(t.path(), "etc/sysconfig/network-scripts/ifcfg-ens1f0");
    touch(t.path(), "usr/sbin/ifup");
    let out = bus::release(&bus, &root, Stack::NetworkScripts, &name("ens1f0")).unwrap();
    assert_eq!(
        out,
        Outcome::UnitStarted {
            unit: "vflag-ifup-ens1f0.service".into(),
            job: "/org/freedesktop/systemd1/job/2".into()
        }
    );
    assert_eq!(
        log.lock().unwrap().transient,
        vec![(
            "vflag-ifup-ens1f0.service".to_string(),
            vec!["/usr/sbin/ifup".to_string(), "ens1f0".to_string()]
        )]
    );
}

#[test]
fn nothing_active_is_no_stack() {
    let d = Daemon::start();
    let _log = start_fake_systemd(&d.address, None);
    assert_eq!(bus::detect(&d.bus()), Stack::None);
}

/// Debian ifupdown: `networking.service` active is the ifup-style stack (network-stack = auto).
#[test]
fn ifupdown_detected_by_networking_service() {
    let d = Daemon::start();
    let _log = start_fake_systemd(&d.address, Some("networking.service"));
    let bus = d.bus();
    assert_eq!(bus::detect(&bus), Stack::NetworkScripts);
    assert_eq!(
        bus::choose(NetworkStack::Auto, Some(&bus)),
        Stack::NetworkScripts
    );
}

/// Debian ifupdown: the hand-over is `ifup --force <if>` in vflag's transient unit, not
/// `ifup@<if>.service` (that runs `ifup --allow=hotplug`, which skips an `auto` port).
#[test]
fn ifupdown_ifup_runs_as_transient_unit_not_the_hotplug_template() {
    let d = Daemon::start();
    let log = start_fake_systemd(&d.address, Some("networking.service"));
    let bus = d.bus();
    let (t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    touch(t.path(), "lib/systemd/system/ifup@.service");
    touch(t.path(), "usr/sbin/ifup");
    // ifupdown's ifup but no /etc/network/interfaces: not ifupdown.
    let err = bus::release(&bus, &root, Stack::NetworkScripts, &name("ens1f0")).unwrap_err();
    assert!(matches!(err, BusError::NoIfup(_)), "{err:?}");
    touch(t.path(), "etc/network/interfaces");
    let out = bus::release(&bus, &root, Stack::NetworkScripts, &name("ens1f0")).unwrap();
    assert!(
        matches!(&out, Outcome::UnitStarted { unit, .. } if unit == "vflag-ifup-ens1f0.service"),
        "{out:?}"
    );
    let log = log.lock().unwrap();
    assert!(log.started.is_empty(), "{:?}", log.started);
    assert_eq!(
        log.transient,
        vec![(
            "vflag-ifup-ens1f0.service".to_string(),
            vec![
                "/usr/sbin/ifup".to_string(),
                "--force".to_string(),
                "ens1f0".to_string()
            ]
        )]
    );
}

#[test]
fn nm_wins_detection_over_networkd() {
    let d = Daemon::start();
    let _nm = start_fake_nm(&d.address, &[], vec![], Activation::Succeeds);
    start_server(&d.address, bus::NETWORKD_NAME, |b| {
        b.serve_at(
            "/org/freedesktop/network1",
            FakeNetworkd {
                calls: Default::default(),
            },
        )
    });
    assert_eq!(bus::detect(&d.bus()), Stack::NetworkManager);
}

/// The boot form of the hold protocol (hotplug::booting) applies only while network-pre.target
/// is not active and no stack runs; without systemd on the bus it is "not at boot" (hold).
#[test]
fn before_network_only_while_network_pre_is_not_reached_and_no_stack_runs() {
    let d = Daemon::start();
    assert!(!bus::before_network(&d.bus()), "no systemd on the bus");
    let _log = start_fake_systemd(&d.address, None);
    assert!(bus::before_network(&d.bus()));

    let d = Daemon::start();
    let _log = start_fake_systemd(&d.address, Some(bus::NETWORK_PRE));
    assert!(!bus::before_network(&d.bus()), "network-pre.target active");

    let d = Daemon::start();
    let _log = start_fake_systemd(&d.address, Some("network.service"));
    assert!(!bus::before_network(&d.bus()), "a stack runs");
}
