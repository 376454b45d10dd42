//! Test servers for tests/bus_*.rs: a private `dbus-daemon` and small zbus servers that play
//! NetworkManager, systemd-networkd and systemd, just the objects and members vflag's client
//! uses. A directory module (`mod bus_fakes;`) so Cargo does not build it as a test of its own.
// Each test crate uses part of these fakes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vflag::bus::{self, Bus};
use vflag::names::IfName;
use vflag::paths::Root;
use zbus::{OwnedObjectPath, OwnedVariant};

pub const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";
pub const T: Duration = Duration::from_secs(10);

/// A private dbus-daemon; killed (by its pid, which we started) on drop.
pub struct Daemon {
    pub child: Child,
    pub address: String,
    pub _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start() -> Daemon {
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

    pub fn bus(&self) -> Bus {
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
pub enum Activation {
    /// The active connection reaches "activated" (2).
    Succeeds,
    /// ActivateConnection itself returns an error.
    Refused,
    /// The active connection ends "deactivated" (4).
    Fails,
    /// Stays "activating" (1) forever.
    Hangs,
}

pub struct World {
    /// ifname -> (managed, state, active connection path)
    pub devices: HashMap<String, (bool, u32, String)>,
    pub activation: Activation,
    pub activations: Vec<(String, String)>,
    pub managed_writes: Vec<(String, bool)>,
    pub next_active: u32,
}

pub type Shared = Arc<Mutex<World>>;

pub fn dev_path(i: usize) -> String {
    format!("/org/freedesktop/NetworkManager/Devices/{i}")
}

pub struct NmRoot {
    pub w: Shared,
    pub order: Vec<String>,
}

#[derive(zbus::DBusError, Debug)]
#[zbus(prefix = "org.freedesktop.NetworkManager")]
pub enum NmError {
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

pub struct FakeDevice {
    pub w: Shared,
    pub name: String,
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

pub struct FakeActive {
    pub state: u32,
    pub connection: OwnedObjectPath,
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

pub struct FakeSettings {
    pub paths: Vec<OwnedObjectPath>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Settings")]
impl FakeSettings {
    #[zbus(name = "ListConnections")]
    fn list_connections(&self) -> Vec<OwnedObjectPath> {
        self.paths.clone()
    }
}

pub type ConnSettings = HashMap<String, HashMap<String, OwnedVariant>>;

pub struct FakeConnection {
    pub settings: ConnSettings,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Settings.Connection")]
impl FakeConnection {
    #[zbus(name = "GetSettings")]
    fn get_settings(&self) -> ConnSettings {
        self.settings.clone()
    }
}

pub fn s(v: &str) -> OwnedVariant {
    OwnedVariant::try_from(zbus::Variant::from(v.to_string())).unwrap()
}

pub fn b(v: bool) -> OwnedVariant {
    OwnedVariant::try_from(zbus::Variant::from(v)).unwrap()
}

/// A connection profile: `[(section, [(key, value)])]`.
pub fn profile(sections: &[(&str, Vec<(&str, OwnedVariant)>)]) -> ConnSettings {
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

pub fn port_profile(id: &str, uuid: &str, ifname: &str, controller: &str) -> ConnSettings {
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

pub struct FakeNm {
    pub w: Shared,
}

/// Run a fake NetworkManager on the bus at `address` (in its own thread, which drives it).
pub fn start_fake_nm(
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

pub fn name(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

/// A root with /sys/class/net/<if>/{ifindex,address} for the interfaces given.
pub fn sysroot(ifs: &[(&str, u32, &str)]) -> (tempfile::TempDir, Root) {
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
// Fake systemd-networkd and systemd.

pub struct FakeNetworkd {
    pub calls: Arc<Mutex<Vec<i32>>>,
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

pub type Props = Vec<(String, OwnedVariant)>;

#[derive(Default)]
pub struct SystemdLog {
    pub started: Vec<(String, String)>,
    pub transient: Vec<(String, Vec<String>)>,
}

pub struct FakeSystemd {
    pub log: Arc<Mutex<SystemdLog>>,
    /// The one unit GetUnit knows (and reports active), if any.
    pub active: Option<&'static str>,
}

#[derive(zbus::DBusError, Debug)]
#[zbus(prefix = "org.freedesktop.systemd1")]
pub enum SdError {
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

pub struct FakeUnit;

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl FakeUnit {
    #[zbus(property, name = "ActiveState")]
    fn active_state(&self) -> String {
        "active".into()
    }
}

pub fn start_server(
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

/// systemd's object path of a unit (`.` escaped as `_2e`, `-` as `_2d`).
pub fn unit_path(unit: &str) -> String {
    let esc = unit.replace('.', "_2e").replace('-', "_2d");
    format!("/org/freedesktop/systemd1/unit/{esc}")
}

pub fn start_fake_systemd(address: &str, active: Option<&'static str>) -> Arc<Mutex<SystemdLog>> {
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

pub fn touch(root: &Path, rel: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, "").unwrap();
    p
}
