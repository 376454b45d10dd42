//! src/bus against a REAL private `dbus-daemon` (system-bus style config, own socket) and a
//! small zbus server that plays NetworkManager (tests/bus_fakes). These drive the client code and
//! its error paths; they prove nothing about the real daemons' behaviour. systemd-networkd and
//! network-scripts: tests/bus_networkd_scripts.rs.

mod bus_fakes;

use bus_fakes::*;
use std::time::{Duration, Instant};

use vflag::bus::{self, Bus, BusError, Outcome, Stack};
use vflag::config::NetworkStack;
use zbus::OwnedVariant;

#[test]
fn nm_absent_is_not_an_error() {
    let d = Daemon::start();
    let bus = d.bus();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    assert_eq!(bus::detect(&bus), Stack::None);
    assert_eq!(bus::choose(NetworkStack::Auto, Some(&bus)), Stack::None);
    assert_eq!(bus::choose(NetworkStack::Auto, None), Stack::None);
    // Even when configured explicitly, a stack that is not running is skipped, not failed.
    for stack in [
        Stack::NetworkManager,
        Stack::Networkd,
        Stack::NetworkScripts,
        Stack::None,
    ] {
        let out = bus::release(&bus, &root, stack, &name("ens1f0")).unwrap();
        assert!(matches!(out, Outcome::Skipped(_)), "{stack}: {out:?}");
        let out = bus::hold(&bus, stack, &name("ens1f0")).unwrap();
        assert!(matches!(out, Outcome::Skipped(_)), "{stack}: {out:?}");
    }
}

#[test]
fn no_bus_at_all_is_a_connect_error_and_auto_means_none() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("unix:path={}", dir.path().join("nothing-here").display());
    let err = Bus::at(&addr, T).unwrap_err();
    assert!(matches!(err, BusError::Connect(_)), "{err:?}");
    assert_eq!(bus::choose(NetworkStack::Auto, None), Stack::None);
    assert_eq!(
        bus::choose(NetworkStack::NetworkManager, None),
        Stack::NetworkManager
    );
}

/// The only test that touches DBUS_SYSTEM_BUS_ADDRESS (process-wide): Bus::system() and the
/// early stage's start/end calls (hotplug::stage_start / stage_end), which use the system bus.
#[test]
fn system_bus_and_stage_start_end() {
    let d = Daemon::start();
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &d.address);
    let bus = Bus::system(T).expect("system bus = private daemon");
    assert!(bus.name_has_owner("org.freedesktop.DBus").unwrap());
    assert!(!bus.name_has_owner(bus::NM_NAME).unwrap());

    let conns = vec![port_profile("bond0-port-ens1f0", "u0", "ens1f0", "bond0")];
    let nm = start_fake_nm(&d.address, &[("ens1f0", true)], conns, Activation::Succeeds);
    let (t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let lag_with = |stack: &str| {
        let p = t.path().join("etc/vflag/vflag.conf");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            format!("[lag bond0]\npfs = ens1f0 ens1f1\nvfs = 4\nnetwork-stack = {stack}\n"),
        )
        .unwrap();
        let loaded = vflag::config::load(&root);
        assert_eq!(loaded.errors().count(), 0, "{:?}", loaded.diagnostics);
        loaded.plan.lags[0].clone()
    };
    let pf = name("ens1f0");

    let lag = lag_with("auto");
    let start = vflag::hotplug::stage_start(&root, &lag, &pf, false, T);
    assert!(start.begin.is_ok(), "{start:?}");
    assert_eq!(start.stack, Stack::NetworkManager);
    assert_eq!(start.hold.as_ref().unwrap(), &Outcome::Held);
    assert!(t.path().join("run/vflag/hotplug").is_dir());
    assert!(
        !nm.w.lock().unwrap().devices["ens1f0"].0,
        "held: Managed=false"
    );

    let end = vflag::hotplug::stage_end(&root, &lag, &pf, T);
    assert_eq!(
        end.finish.as_ref().unwrap(),
        &vflag::hotplug::Finish::NotHeld,
        "no udev database here"
    );
    assert_eq!(end.stack, Stack::NetworkManager);
    assert!(
        matches!(end.release, Ok(Outcome::Activated { .. })),
        "{end:?}"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("run/vflag/hotplug/ens1f0")).unwrap(),
        "7\n"
    );
    assert!(
        nm.w.lock().unwrap().devices["ens1f0"].0,
        "released: Managed=true"
    );

    // The late stage on a finished PF in no bond that NetworkManager manages: left to its own
    // autoconnect. Activating the port beside it made NetworkManager 1.42 activate the bond
    // twice and delete it (cx-slow-switchdev-nm, loaded host). Seen failing on the old code.
    let activations = nm.w.lock().unwrap().activations.len();
    assert!(vflag::hotplug::release_stale_hold(&root, &lag, &pf, T).is_none());
    assert_eq!(nm.w.lock().unwrap().activations.len(), activations);
    // One NetworkManager keeps unmanaged (it took the PF in while held): handed over.
    {
        let mut w = nm.w.lock().unwrap();
        let dev = w.devices.get_mut("ens1f0").unwrap();
        *dev = (false, 10, "/".into());
    }
    let end = vflag::hotplug::release_stale_hold(&root, &lag, &pf, T).expect("handed over");
    assert!(
        matches!(end.release, Ok(Outcome::Activated { .. })),
        "{end:?}"
    );
    assert_eq!(nm.w.lock().unwrap().activations.len(), activations + 1);

    // Explicit stack that does not run: skipped, not failed.
    let end = vflag::hotplug::stage_end(&root, &lag_with("systemd-networkd"), &pf, T);
    assert!(matches!(end.release, Ok(Outcome::Skipped(_))), "{end:?}");
    // network-stack = none: the bus is not even asked.
    let end = vflag::hotplug::stage_end(&root, &lag_with("none"), &pf, T);
    assert_eq!(end.stack, Stack::None);
    assert!(matches!(end.release, Ok(Outcome::Skipped(_))), "{end:?}");

    // No system bus at all: auto is "no stack"; an explicit stack is an error.
    let gone = format!("unix:path={}", t.path().join("no-bus").display());
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &gone);
    let end = vflag::hotplug::stage_end(&root, &lag_with("auto"), &pf, T);
    assert_eq!(end.stack, Stack::None);
    assert!(matches!(end.release, Ok(Outcome::Skipped(_))), "{end:?}");
    let end = vflag::hotplug::stage_end(&root, &lag_with("NetworkManager"), &pf, T);
    assert!(matches!(end.release, Err(BusError::Connect(_))), "{end:?}");
    assert!(
        end.finish.is_ok(),
        "the marker is written even without a bus"
    );
}

#[test]
fn nm_detected_and_unknown_device_is_reported() {
    let d = Daemon::start();
    let _nm = start_fake_nm(
        &d.address,
        &[("ens1f0", false)],
        vec![],
        Activation::Succeeds,
    );
    let bus = d.bus();
    let (_t, root) = sysroot(&[("ens9f9", 9, "02:00:00:00:00:09")]);
    assert_eq!(bus::detect(&bus), Stack::NetworkManager);
    let err = bus::release(&bus, &root, Stack::NetworkManager, &name("ens9f9")).unwrap_err();
    assert!(
        matches!(&err, BusError::UnknownDevice(n) if n == "ens9f9"),
        "{err:?}"
    );
    // hold on a device NM does not know yet: nothing to hold, not an error.
    let out = bus::hold(&bus, Stack::NetworkManager, &name("ens9f9")).unwrap();
    assert!(matches!(out, Outcome::Skipped(_)), "{out:?}");
}

#[test]
fn nm_hold_sets_managed_false() {
    let d = Daemon::start();
    let nm = start_fake_nm(
        &d.address,
        &[("ens1f0", true)],
        vec![],
        Activation::Succeeds,
    );
    let bus = d.bus();
    assert_eq!(
        bus::hold(&bus, Stack::NetworkManager, &name("ens1f0")).unwrap(),
        Outcome::Held
    );
    let w = nm.w.lock().unwrap();
    assert_eq!(w.managed_writes, vec![("ens1f0".to_string(), false)]);
    assert!(!w.devices["ens1f0"].0);
}

/// Unmanaging an active port would take it out of the bond: hold leaves it alone.
#[test]
fn nm_hold_leaves_an_active_port_alone() {
    let d = Daemon::start();
    let nm = start_fake_nm(
        &d.address,
        &[("ens1f0", true)],
        vec![],
        Activation::Succeeds,
    );
    nm.w.lock().unwrap().devices.get_mut("ens1f0").unwrap().1 = 100;
    let bus = d.bus();
    let out = bus::hold(&bus, Stack::NetworkManager, &name("ens1f0")).unwrap();
    assert!(
        matches!(&out, Outcome::Skipped(why) if why.contains("state 100")),
        "{out:?}"
    );
    assert!(nm.w.lock().unwrap().managed_writes.is_empty());
}

#[test]
fn nm_release_activates_the_bond_port_connection() {
    let d = Daemon::start();
    let conns = vec![
        // Not a port: ignored.
        profile(&[(
            "connection",
            vec![
                ("id", s("plain")),
                ("uuid", s("u-plain")),
                ("interface-name", s("ens1f0")),
            ],
        )]),
        // Port of the other PF: ignored.
        port_profile("bond0-port-ens1f1", "u-other", "ens1f1", "bond0"),
        // Newer NM spelling (port-type/controller), matched by MAC only, autoconnect off.
        profile(&[
            (
                "connection",
                vec![
                    ("id", s("by-mac")),
                    ("uuid", s("u-mac")),
                    ("controller", s("bond0")),
                    ("port-type", s("bond")),
                    ("autoconnect", b(false)),
                ],
            ),
            (
                "802-3-ethernet",
                vec![(
                    "mac-address",
                    OwnedVariant::try_from(zbus::Variant::from(vec![2u8, 0, 0, 0, 0, 1])).unwrap(),
                )],
            ),
        ]),
        // The best match: by name.
        port_profile("bond0-port-ens1f0", "u-ens1f0", "ens1f0", "bond0"),
    ];
    let nm = start_fake_nm(
        &d.address,
        &[("ens1f1", true), ("ens1f0", false)],
        conns,
        Activation::Succeeds,
    );
    let bus = d.bus();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let out = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0")).unwrap();
    assert_eq!(
        out,
        Outcome::Activated {
            connection: "bond0-port-ens1f0".into(),
            uuid: "u-ens1f0".into(),
            controller: "bond0".into()
        }
    );
    let w = nm.w.lock().unwrap();
    assert_eq!(w.managed_writes, vec![("ens1f0".to_string(), true)]);
    assert_eq!(
        w.activations,
        vec![(
            "/org/freedesktop/NetworkManager/Settings/4".to_string(),
            "/org/freedesktop/NetworkManager/Devices/1".to_string()
        )]
    );
    drop(w);
    // Releasing again: the profile is already active on the device: no second activation.
    let out = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0")).unwrap();
    assert!(matches!(out, Outcome::Activated { .. }), "{out:?}");
    assert_eq!(nm.w.lock().unwrap().activations.len(), 1);
}

#[test]
fn nm_release_matches_by_mac_when_no_profile_names_the_interface() {
    let d = Daemon::start();
    let mac = vec![2u8, 0, 0, 0, 0, 1];
    let conns = vec![profile(&[
        (
            "connection",
            vec![
                ("id", s("by-mac")),
                ("uuid", s("u-mac")),
                ("master", s("bond0")),
                ("slave-type", s("bond")),
            ],
        ),
        (
            "802-3-ethernet",
            vec![(
                "mac-address",
                OwnedVariant::try_from(zbus::Variant::from(mac)).unwrap(),
            )],
        ),
    ])];
    let _nm = start_fake_nm(
        &d.address,
        &[("ens1f0", false)],
        conns,
        Activation::Succeeds,
    );
    let bus = d.bus();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let out = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0")).unwrap();
    assert!(
        matches!(&out, Outcome::Activated { uuid, .. } if uuid == "u-mac"),
        "{out:?}"
    );
    // A different MAC does not match.
    let (_t2, root2) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:02")]);
    let out = bus::release(&bus, &root2, Stack::NetworkManager, &name("ens1f0")).unwrap();
    assert!(
        matches!(
            out,
            Outcome::Activated { .. } | Outcome::ManagedNoPortConnection
        ),
        "{out:?}"
    );
}

#[test]
fn nm_release_without_port_profile_only_manages() {
    let d = Daemon::start();
    let conns = vec![port_profile("other", "u-o", "ens1f1", "bond0")];
    let nm = start_fake_nm(
        &d.address,
        &[("ens1f0", false)],
        conns,
        Activation::Succeeds,
    );
    let bus = d.bus();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let out = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0")).unwrap();
    assert_eq!(out, Outcome::ManagedNoPortConnection);
    let w = nm.w.lock().unwrap();
    assert!(w.devices["ens1f0"].0, "Managed=true was set");
    assert!(w.activations.is_empty());
}

#[test]
fn nm_activation_refused_is_an_error() {
    let d = Daemon::start();
    let conns = vec![port_profile("p0", "u0", "ens1f0", "bond0")];
    let _nm = start_fake_nm(&d.address, &[("ens1f0", false)], conns, Activation::Refused);
    let bus = d.bus();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let err = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0")).unwrap_err();
    match &err {
        BusError::Activation {
            ifname,
            connection,
            reason,
        } => {
            assert_eq!(ifname, "ens1f0");
            assert_eq!(connection, "p0");
            assert!(
                reason.contains("org.freedesktop.NetworkManager.UnknownConnection"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nm_activation_ending_deactivated_is_an_error() {
    let d = Daemon::start();
    let conns = vec![port_profile("p0", "u0", "ens1f0", "bond0")];
    let _nm = start_fake_nm(&d.address, &[("ens1f0", false)], conns, Activation::Fails);
    let bus = d.bus();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let err = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0")).unwrap_err();
    assert!(
        matches!(&err, BusError::Activation { reason, .. } if reason.contains("state 4")),
        "{err:?}"
    );
}

#[test]
fn nm_activation_that_hangs_is_bounded() {
    let d = Daemon::start();
    let conns = vec![port_profile("p0", "u0", "ens1f0", "bond0")];
    let _nm = start_fake_nm(&d.address, &[("ens1f0", false)], conns, Activation::Hangs);
    let bus = Bus::at(&d.address, Duration::from_secs(2)).unwrap();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let t0 = Instant::now();
    let out = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0")).unwrap();
    assert!(matches!(out, Outcome::Activating { .. }), "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

/// A peer that owns the name but never answers: every call is bounded by the timeout.
#[test]
fn a_peer_that_never_answers_times_out() {
    let d = Daemon::start();
    let address = d.address.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        zbus::block_on(async move {
            // Owns NM's name, serves nothing, and never replies to anything: raw message stream
            // that is never read.
            let conn = zbus::conn::Builder::address(address.as_str())
                .name(bus::NM_NAME)
                .build()
                .await
                .unwrap();
            tx.send(()).unwrap();
            let _keep = conn;
            std::future::pending::<()>().await;
        })
    });
    rx.recv_timeout(T).unwrap();
    let bus = Bus::at(&d.address, Duration::from_millis(700)).unwrap();
    let (_t, root) = sysroot(&[("ens1f0", 7, "02:00:00:00:00:01")]);
    let t0 = Instant::now();
    let res = bus::release(&bus, &root, Stack::NetworkManager, &name("ens1f0"));
    let took = t0.elapsed();
    // zbus answers unknown objects with an error itself; either way it must be quick and Err.
    assert!(res.is_err(), "{res:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
