//! src/bus against a REAL private `dbus-daemon` (system-bus style config, own socket) and small
//! zbus test servers that play NetworkManager, systemd-networkd and systemd. These drive the
//! client code and its error paths; they prove nothing about the real daemons' behaviour.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vflag::bus::{self, Bus, BusError, Outcome, Stack};
use vflag::config::NetworkStack;
use vflag::names::IfName;
use vflag::paths::Root;
use zbus::{OwnedObjectPath, OwnedVariant};

const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";
const T: Duration = Duration::from_secs(10);

/// A private dbus-daemon; killed (by its pid, which we started) on drop.
struct Daemon {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        let cfg = dir.path().join("bus.conf");
        std::fs::write(
            &cfg,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                sock.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(DBUS_DAEMON)
            .arg(format!("--config-file={}", cfg.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed {address:?}"
        );
        Daemon {
            child,
            address,
            _dir: dir,
        }
    }

    fn bus(&self) -> Bus {
        Bus::at(&self.address, T).expect("connect to the private bus")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// A fake NetworkManager: just the objects and members vflag's client uses.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Activation {
    /// The active connection reaches "activated" (2).
    Succeeds,
    /// ActivateConnection itself returns an error.
    Refused,
    /// The active connection ends "deactivated" (4).
    Fails,
    /// Stays "activating" (1) forever.
    Hangs,
}

struct World {
    /// ifname -> (managed, state, active connection path)
    devices: HashMap<String, (bool, u32, String)>,
    activation: Activation,
    activations: Vec<(String, String)>,
    managed_writes: Vec<(String, bool)>,
    next_active: u32,
}

type Shared = Arc<Mutex<World>>;

fn dev_path(i: usize) -> String {
    format!("/org/freedesktop/NetworkManager/Devices/{i}")
}

struct NmRoot {
    w: Shared,
    order: Vec<String>,
}

#[derive(zbus::DBusError, Debug)]
#[zbus(prefix = "org.freedesktop.NetworkManager")]
enum NmError {
    #[zbus(error)]
    ZBus(zbus::Error),
    UnknownDevice(String),
    UnknownConnection(String),
}

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl NmRoot {
    #[zbus(name = "GetDeviceByIpIface")]
    fn get_device_by_ip_iface(&self, iface: String) -> Result<OwnedObjectPath, NmError> {
        match self.order.iter().position(|n| *n == iface) {
            Some(i) => Ok(OwnedObjectPath::try_from(dev_path(i)).unwrap()),
            None => Err(NmError::UnknownDevice(format!(
                "No device found for the requested iface {iface}"
            ))),
        }
    }

    #[zbus(name = "ActivateConnection")]
    async fn activate_connection(
        &self,
        connection: OwnedObjectPath,
        device: OwnedObjectPath,
        _specific_object: OwnedObjectPath,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> Result<OwnedObjectPath, NmError> {
        let (activation, n) = {
            let mut w = self.w.lock().unwrap();
            w.activations
                .push((connection.as_str().into(), device.as_str().into()));
            w.next_active += 1;
            (w.activation, w.next_active)
        };
        if activation == Activation::Refused {
            return Err(NmError::UnknownConnection(
                "Connection is not available on device".into(),
            ));
        }
        let path = format!("/org/freedesktop/NetworkManager/ActiveConnection/{n}");
        let state = match activation {
            Activation::Succeeds => 2,
            Activation::Fails => 4,
            _ => 1,
        };
        server
            .at(
                path.as_str(),
                FakeActive {
                    state,
                    connection: connection.clone(),
                },
            )
            .await
            .map_err(NmError::ZBus)?;
        let idx: usize = device.as_str().rsplit('/').next().unwrap().parse().unwrap();
        let name = self.order[idx].clone();
        if let Some(d) = self.w.lock().unwrap().devices.get_mut(&name) {
            d.2 = path.clone();
            if state == 2 {
                d.1 = 100;
            }
        }
        Ok(OwnedObjectPath::try_from(path).unwrap())
    }
}

struct FakeDevice {
    w: Shared,
    name: String,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Device")]
impl FakeDevice {
    #[zbus(property, name = "Managed")]
    fn managed(&self) -> bool {
        self.w.lock().unwrap().devices[&self.name].0
    }
    #[zbus(property, name = "Managed")]
    fn set_managed(&mut self, managed: bool) {
        let mut w = self.w.lock().unwrap();
        w.managed_writes.push((self.name.clone(), managed));
        let d = w.devices.get_mut(&self.name).unwrap();
        d.0 = managed;
        d.1 = if managed { 30 } else { 10 };
    }
    #[zbus(property, name = "State")]
    fn state(&self) -> u32 {
        self.w.lock().unwrap().devices[&self.name].1
    }
    #[zbus(property, name = "ActiveConnection")]
    fn active_connection(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(self.w.lock().unwrap().devices[&self.name].2.clone()).unwrap()
    }
}

struct FakeActive {
    state: u32,
    connection: OwnedObjectPath,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Connection.Active")]
impl FakeActive {
    #[zbus(property, name = "State")]
    fn state(&self) -> u32 {
        self.state
    }
    #[zbus(property, name = "Connection")]
    fn connection(&self) -> OwnedObjectPath {
        self.connection.clone()
    }
}

struct FakeSettings {
    paths: Vec<OwnedObjectPath>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Settings")]
impl FakeSettings {
    #[zbus(name = "ListConnections")]
    fn list_connections(&self) -> Vec<OwnedObjectPath> {
        self.paths.clone()
    }
}

type ConnSettings = HashMap<String, HashMap<String, OwnedVariant>>;

struct FakeConnection {
    settings: ConnSettings,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Settings.Connection")]
impl FakeConnection {
    #[zbus(name = "GetSettings")]
    fn get_settings(&self) -> ConnSettings {
        self.settings.clone()
    }
}

fn s(v: &str) -> OwnedVariant {
    OwnedVariant::try_from(zbus::Variant::from(v.to_string())).unwrap()
}

fn b(v: bool) -> OwnedVariant {
    OwnedVariant::try_from(zbus::Variant::from(v)).unwrap()
}

/// A connection profile: `[(section, [(key, value)])]`.
fn profile(sections: &[(&str, Vec<(&str, OwnedVariant)>)]) -> ConnSettings {
    sections
        .iter()
        .map(|(sec, kv)| {
            (
                sec.to_string(),
                kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            )
        })
        .collect()
}

fn port_profile(id: &str, uuid: &str, ifname: &str, controller: &str) -> ConnSettings {
    profile(&[(
        "connection",
        vec![
            ("id", s(id)),
            ("uuid", s(uuid)),
            ("type", s("802-3-ethernet")),
            ("interface-name", s(ifname)),
            ("master", s(controller)),
            ("slave-type", s("bond")),
        ],
    )])
}

struct FakeNm {
    w: Shared,
}

/// Run a fake NetworkManager on the bus at `address` (in its own thread, which drives it).
fn start_fake_nm(
    address: &str,
    devices: &[(&str, bool)],
    connections: Vec<ConnSettings>,
    activation: Activation,
) -> FakeNm {
    let w: Shared = Arc::new(Mutex::new(World {
        devices: devices
            .iter()
            .map(|(n, managed)| {
                (
                    n.to_string(),
                    (*managed, if *managed { 30 } else { 10 }, "/".into()),
                )
            })
            .collect(),
        activation,
        activations: vec![],
        managed_writes: vec![],
        next_active: 0,
    }));
    let order: Vec<String> = devices.iter().map(|(n, _)| n.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let address = address.to_string();
    let shared = Arc::clone(&w);
    std::thread::spawn(move || {
        zbus::block_on(async move {
            let mut builder = zbus::conn::Builder::address(address.as_str()).serve_at(
                "/org/freedesktop/NetworkManager",
                NmRoot {
                    w: Arc::clone(&shared),
                    order: order.clone(),
                },
            );
            for (i, n) in order.iter().enumerate() {
                builder = builder.serve_at(
                    dev_path(i),
                    FakeDevice {
                        w: Arc::clone(&shared),
                        name: n.clone(),
                    },
                );
            }
            let mut paths = vec![];
            for (i, c) in connections.into_iter().enumerate() {
                let p = format!("/org/freedesktop/NetworkManager/Settings/{}", i + 1);
                paths.push(OwnedObjectPath::try_from(p.clone()).unwrap());
                builder = builder.serve_at(p, FakeConnection { settings: c });
            }
            let conn = builder
                .serve_at(
                    "/org/freedesktop/NetworkManager/Settings",
                    FakeSettings { paths },
                )
                .name(bus::NM_NAME)
                .build()
                .await
                .expect("fake NM connects");
            tx.send(()).unwrap();
            // Keep serving until the process ends.
            let _keep = conn;
            std::future::pending::<()>().await;
        })
    });
    rx.recv_timeout(T).expect("fake NM ready");
    FakeNm { w }
}

fn name(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

/// A root with /sys/class/net/<if>/{ifindex,address} for the interfaces given.
fn sysroot(ifs: &[(&str, u32, &str)]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    for (n, idx, mac) in ifs {
        let d = dir.path().join("sys/class/net").join(n);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ifindex"), format!("{idx}\n")).unwrap();
        std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
    }
    let root = Root::new(dir.path());
    (dir, root)
}

// ---------------------------------------------------------------------------------------------

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
    let start = vflag::hotplug::stage_start(&root, &lag, &pf, T);
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

// ---------------------------------------------------------------------------------------------
// Fake systemd-networkd and systemd.

struct FakeNetworkd {
    calls: Arc<Mutex<Vec<i32>>>,
}

#[zbus::interface(name = "org.freedesktop.network1.Manager")]
impl FakeNetworkd {
    #[zbus(name = "ReconfigureLink")]
    fn reconfigure_link(&self, ifindex: i32) -> zbus::fdo::Result<()> {
        if ifindex == 666 {
            return Err(zbus::fdo::Error::Failed("Link not found".into()));
        }
        self.calls.lock().unwrap().push(ifindex);
        Ok(())
    }
}

type Props = Vec<(String, OwnedVariant)>;

#[derive(Default)]
struct SystemdLog {
    started: Vec<(String, String)>,
    transient: Vec<(String, Vec<String>)>,
}

struct FakeSystemd {
    log: Arc<Mutex<SystemdLog>>,
    /// The one unit GetUnit knows (and reports active), if any.
    active: Option<&'static str>,
}

#[derive(zbus::DBusError, Debug)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum SdError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoSuchUnit(String),
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeSystemd {
    #[zbus(name = "GetUnit")]
    fn get_unit(&self, name: String) -> Result<OwnedObjectPath, SdError> {
        if Some(name.as_str()) == self.active {
            Ok(OwnedObjectPath::try_from(unit_path(&name)).unwrap())
        } else {
            Err(SdError::NoSuchUnit(format!("Unit {name} not loaded.")))
        }
    }
    #[zbus(name = "StartUnit")]
    fn start_unit(&self, name: String, mode: String) -> OwnedObjectPath {
        self.log.lock().unwrap().started.push((name, mode));
        OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/1").unwrap()
    }
    #[zbus(name = "ResetFailedUnit")]
    fn reset_failed_unit(&self, name: String) -> Result<(), SdError> {
        Err(SdError::NoSuchUnit(format!("Unit {name} not loaded.")))
    }
    #[zbus(name = "StartTransientUnit")]
    fn start_transient_unit(
        &self,
        name: String,
        _mode: String,
        properties: Props,
        _aux: Vec<(String, Props)>,
    ) -> OwnedObjectPath {
        let mut argv = vec![];
        for (k, v) in properties {
            if k == "ExecStart" {
                let exec: Vec<(String, Vec<String>, bool)> = v.try_into().unwrap();
                argv = exec[0].1.clone();
            }
        }
        self.log.lock().unwrap().transient.push((name, argv));
        OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/2").unwrap()
    }
}

struct FakeUnit;

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl FakeUnit {
    #[zbus(property, name = "ActiveState")]
    fn active_state(&self) -> String {
        "active".into()
    }
}

fn start_server(
    address: &str,
    name: &'static str,
    serve: impl FnOnce(zbus::conn::Builder<'static>) -> zbus::conn::Builder<'static> + Send + 'static,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let address = address.to_string();
    std::thread::spawn(move || {
        zbus::block_on(async move {
            let b = serve(zbus::conn::Builder::address(address.as_str()));
            let conn = b.name(name).build().await.unwrap();
            tx.send(()).unwrap();
            let _keep = conn;
            std::future::pending::<()>().await;
        })
    });
    rx.recv_timeout(T).unwrap();
}

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

/// systemd's object path of a unit (`.` escaped as `_2e`, `-` as `_2d`).
fn unit_path(unit: &str) -> String {
    let esc = unit.replace('.', "_2e").replace('-', "_2d");
    format!("/org/freedesktop/systemd1/unit/{esc}")
}

fn start_fake_systemd(address: &str, active: Option<&'static str>) -> Arc<Mutex<SystemdLog>> {
    let log = Arc::new(Mutex::new(SystemdLog::default()));
    let l = Arc::clone(&log);
    start_server(address, bus::SYSTEMD_NAME, move |b| {
        let b = b.serve_at("/org/freedesktop/systemd1", FakeSystemd { log: l, active });
        match active {
            Some(unit) => b.serve_at(unit_path(unit), FakeUnit),
            None => b,
        }
    });
    log
}

fn touch(root: &Path, rel: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, "").unwrap();
    p
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
