//! NetworkManager over D-Bus: a handful of hand-written proxies (the NM crates are on other
//! zbus versions or tokio).
//!
//! Facts used (NetworkManager D-Bus API): `GetDeviceByIpIface(s) -> o` fails with
//! `org.freedesktop.NetworkManager.UnknownDevice`; `Device.Managed` is read-write and a value
//! set over D-Bus is an explicit user decision that overrides a udev `NM_UNMANAGED=1` (the udev
//! flag is one of the non-authoritative unmanaged flags), is not persistent, and dies with the
//! device; `Settings.ListConnections() -> ao`, `Settings.Connection.GetSettings() -> a{sa{sv}}`;
//! `ActivateConnection(o connection, o device, o specific_object) -> o active`;
//! `Connection.Active.State`: 1 activating, 2 activated, 3 deactivating, 4 deactivated.
//! `Device.State`: 10 unmanaged, 20 unavailable, 30 disconnected, 100 activated, 120 failed.

use super::{error_name, sleep, Bus, BusError, Outcome, NM_NAME};
use crate::names::IfName;
use crate::paths::Root;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use zbus::proxy::CacheProperties;
use zbus::{ObjectPath, OwnedObjectPath, OwnedVariant};

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager"
)]
pub(crate) trait NetworkManager {
    #[zbus(name = "GetDeviceByIpIface")]
    fn get_device_by_ip_iface(&self, iface: &str) -> zbus::Result<OwnedObjectPath>;

    #[zbus(name = "ActivateConnection")]
    fn activate_connection(
        &self,
        connection: &ObjectPath<'_>,
        device: &ObjectPath<'_>,
        specific_object: &ObjectPath<'_>,
    ) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Device",
    default_service = "org.freedesktop.NetworkManager"
)]
pub(crate) trait Device {
    #[zbus(property, name = "Managed")]
    fn managed(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "Managed")]
    fn set_managed(&self, managed: bool) -> zbus::Result<()>;
    #[zbus(property, name = "State")]
    fn state(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "ActiveConnection")]
    fn active_connection(&self) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Settings",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager/Settings"
)]
pub(crate) trait Settings {
    #[zbus(name = "ListConnections")]
    fn list_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

type ConnSettings = HashMap<String, HashMap<String, OwnedVariant>>;

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Settings.Connection",
    default_service = "org.freedesktop.NetworkManager"
)]
pub(crate) trait SettingsConnection {
    #[zbus(name = "GetSettings")]
    fn get_settings(&self) -> zbus::Result<ConnSettings>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Connection.Active",
    default_service = "org.freedesktop.NetworkManager"
)]
pub(crate) trait ActiveConnection {
    #[zbus(property, name = "State")]
    fn state(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "Connection")]
    fn connection(&self) -> zbus::Result<OwnedObjectPath>;
}

const DEVICE_STATE_UNMANAGED: u32 = 10;
const DEVICE_STATE_UNAVAILABLE: u32 = 20;
const DEVICE_STATE_DISCONNECTED: u32 = 30;
const ACTIVE_ACTIVATED: u32 = 2;
const ACTIVE_DEACTIVATING: u32 = 3;
const ACTIVE_DEACTIVATED: u32 = 4;
const POLL: Duration = Duration::from_millis(100);

async fn device(bus: &Bus, ifname: &IfName) -> Result<Option<DeviceProxy<'static>>, BusError> {
    let conn = bus.connection();
    let nm = NetworkManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(BusError::call("NetworkManager proxy"))?;
    let path = match nm.get_device_by_ip_iface(ifname.as_str()).await {
        Ok(p) => p,
        Err(e) if error_name(&e) == Some("org.freedesktop.NetworkManager.UnknownDevice") => {
            return Ok(None)
        }
        Err(e) => return Err(BusError::call(format!("GetDeviceByIpIface({ifname})"))(e)),
    };
    let dev = DeviceProxy::builder(conn)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(BusError::call("device proxy"))?;
    Ok(Some(dev))
}

pub(super) async fn hold(bus: &Bus, ifname: &IfName) -> Result<Outcome, BusError> {
    if !bus.has_owner(NM_NAME).await? {
        return Ok(Outcome::Skipped("NetworkManager is not running".into()));
    }
    let Some(dev) = device(bus, ifname).await? else {
        return Ok(Outcome::Skipped(format!(
            "NetworkManager does not know {ifname} (yet)"
        )));
    };
    // Unmanaging an active port makes NetworkManager release it from the bond (seen in the
    // guest): never disturb a port that is activating or active; the set-up leaves a bonded
    // port alone anyway.
    let state = dev
        .state()
        .await
        .map_err(BusError::call("reading Device.State"))?;
    if state > DEVICE_STATE_DISCONNECTED {
        return Ok(Outcome::Skipped(format!(
            "{ifname} is in use by NetworkManager (device state {state}); not disturbing it"
        )));
    }
    dev.set_managed(false)
        .await
        .map_err(BusError::call(format!("setting Managed=false on {ifname}")))?;
    Ok(Outcome::Held)
}

/// Does NetworkManager leave `ifname` unmanaged for good? `false` when it is not running, does
/// not know the device yet (it decides when it does), or manages it (its autoconnect enslaves
/// the port); `true` when the device is unmanaged for all of `settle` (a device NetworkManager
/// has just found is unmanaged for a moment before it takes it: seen in the guest, 0.07 s).
pub(super) async fn leaves_unmanaged(
    bus: &Bus,
    ifname: &IfName,
    settle: Duration,
) -> Result<bool, BusError> {
    if !bus.has_owner(NM_NAME).await? {
        return Ok(false);
    }
    let Some(dev) = device(bus, ifname).await? else {
        return Ok(false);
    };
    let started = Instant::now();
    loop {
        let state = dev
            .state()
            .await
            .map_err(BusError::call("reading Device.State"))?;
        if state != DEVICE_STATE_UNMANAGED {
            return Ok(false);
        }
        if started.elapsed() >= settle {
            return Ok(true);
        }
        sleep(POLL).await;
    }
}

/// A bond-port connection profile that fits the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortConnection {
    pub path: OwnedObjectPath,
    pub id: String,
    pub uuid: String,
    pub controller: String,
    /// Matched by `connection.interface-name` (true) or by MAC address only (false).
    pub by_name: bool,
    pub autoconnect: bool,
}

fn string(section: Option<&HashMap<String, OwnedVariant>>, key: &str) -> Option<String> {
    section?
        .get(key)
        .and_then(|v| String::try_from(v.clone()).ok())
        .filter(|s| !s.is_empty())
}

/// Does this profile make `ifname` (MAC `mac`) a bond port? `connection.interface-name` must
/// name the interface, or be absent with `802-3-ethernet.mac-address` equal to the interface's
/// MAC; the port type (`slave-type`, newer `port-type`) must be `bond`, and the controller
/// (`master`, newer `controller`) set.
pub(crate) fn port_connection(
    path: OwnedObjectPath,
    s: &ConnSettings,
    ifname: &str,
    mac: Option<&[u8]>,
) -> Option<PortConnection> {
    let c = s.get("connection");
    let port_type = string(c, "port-type").or_else(|| string(c, "slave-type"))?;
    if port_type != "bond" {
        return None;
    }
    let controller = string(c, "controller").or_else(|| string(c, "master"))?;
    let by_name = match string(c, "interface-name") {
        Some(n) if n == ifname => true,
        Some(_) => return None,
        None => {
            let want = mac?;
            let have = s
                .get("802-3-ethernet")
                .and_then(|e| e.get("mac-address"))
                .and_then(|v| Vec::<u8>::try_from(v.clone()).ok())?;
            if have != want {
                return None;
            }
            false
        }
    };
    let autoconnect = c
        .and_then(|c| c.get("autoconnect"))
        .and_then(|v| bool::try_from(v.clone()).ok())
        .unwrap_or(true); // NM's default
    Some(PortConnection {
        path,
        id: string(c, "id").unwrap_or_default(),
        uuid: string(c, "uuid").unwrap_or_default(),
        controller,
        by_name,
        autoconnect,
    })
}

/// The MAC address of the interface as bytes (`/sys/class/net/<if>/address`).
fn mac_of(root: &Root, ifname: &IfName) -> Option<Vec<u8>> {
    let text = crate::device::sysfs::netdev_attr(root, ifname.as_str(), "address").ok()??;
    text.trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

/// Find the best bond-port profile for the interface: name matches before MAC matches,
/// autoconnect profiles before others, then NM's listing order.
pub(crate) async fn find_port_connection(
    bus: &Bus,
    root: &Root,
    ifname: &IfName,
) -> Result<Option<PortConnection>, BusError> {
    let conn = bus.connection();
    let settings = SettingsProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(BusError::call("Settings proxy"))?;
    let paths = settings
        .list_connections()
        .await
        .map_err(BusError::call("ListConnections"))?;
    let mac = mac_of(root, ifname);
    let mut found = Vec::new();
    for path in paths {
        let proxy = SettingsConnectionProxy::builder(conn)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(BusError::call("connection proxy"))?;
        // A profile that vanished or cannot be read is skipped, not fatal.
        let s = match proxy.get_settings().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("GetSettings({}) failed, skipping: {e}", path.as_str());
                continue;
            }
        };
        if let Some(p) = port_connection(path, &s, ifname.as_str(), mac.as_deref()) {
            found.push(p);
        }
    }
    found.sort_by_key(|p| (!p.by_name, !p.autoconnect));
    Ok(found.into_iter().next())
}

pub(super) async fn release(bus: &Bus, root: &Root, ifname: &IfName) -> Result<Outcome, BusError> {
    if !bus.has_owner(NM_NAME).await? {
        return Ok(Outcome::Skipped("NetworkManager is not running".into()));
    }
    let started = Instant::now();
    // Leave a margin of the operation's bound for the last calls.
    let budget = bus.timeout().mul_f32(0.8);
    let Some(dev) = device(bus, ifname).await? else {
        return Err(BusError::UnknownDevice(ifname.to_string()));
    };
    let managed = dev
        .managed()
        .await
        .map_err(BusError::call("reading Managed"))?;
    if !managed {
        dev.set_managed(true)
            .await
            .map_err(BusError::call(format!("setting Managed=true on {ifname}")))?;
    }
    let Some(port) = find_port_connection(bus, root, ifname).await? else {
        return Ok(Outcome::ManagedNoPortConnection);
    };
    tracing::info!(
        "{ifname}: bond port connection {:?} ({}) of {}",
        port.id,
        port.uuid,
        port.controller
    );

    wait_taken_over(&dev, started, budget / 4).await?;
    let active_path = activation(bus, &dev, ifname, &port).await?;
    wait_activated(bus, active_path, ifname, port, started, budget).await
}

/// Let NM take the device over (unmanaged -> unavailable/disconnected) before activating; a
/// device without carrier may stay "unavailable", so this wait ends at `settle` and then we try.
async fn wait_taken_over(
    dev: &DeviceProxy<'static>,
    started: Instant,
    settle: Duration,
) -> Result<(), BusError> {
    loop {
        let state = dev
            .state()
            .await
            .map_err(BusError::call("reading Device.State"))?;
        if state > DEVICE_STATE_UNAVAILABLE || started.elapsed() >= settle {
            return Ok(());
        }
        if state != DEVICE_STATE_UNMANAGED && state != DEVICE_STATE_UNAVAILABLE {
            return Ok(());
        }
        sleep(POLL).await;
    }
}

/// The active connection of the port profile on `dev`: the one NM's autoconnect may already be
/// activating (not restarted), else a new activation.
async fn activation(
    bus: &Bus,
    dev: &DeviceProxy<'static>,
    ifname: &IfName,
    port: &PortConnection,
) -> Result<OwnedObjectPath, BusError> {
    let current = dev
        .active_connection()
        .await
        .map_err(BusError::call("reading ActiveConnection"))?;
    if current.as_str() != "/" {
        if let Ok(ac) = active_proxy(bus, current.clone()).await {
            if ac.connection().await.ok().as_ref() == Some(&port.path) {
                return Ok(current);
            }
        }
    }
    let nm = NetworkManagerProxy::builder(bus.connection())
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(BusError::call("NetworkManager proxy"))?;
    let root_path = ObjectPath::try_from("/").map_err(|e| BusError::call("/")(e))?;
    nm.activate_connection(&port.path.as_ref(), &dev.inner().path().clone(), &root_path)
        .await
        .map_err(|e| BusError::Activation {
            ifname: ifname.to_string(),
            connection: port.id.clone(),
            reason: describe(&e),
        })
}

/// Follow the activation until it is activated, fails, or the budget (from `started`) is spent.
async fn wait_activated(
    bus: &Bus,
    active_path: OwnedObjectPath,
    ifname: &IfName,
    port: PortConnection,
    started: Instant,
    budget: Duration,
) -> Result<Outcome, BusError> {
    let ac = active_proxy(bus, active_path).await?;
    loop {
        let state = ac.state().await.map_err(|e| BusError::Activation {
            ifname: ifname.to_string(),
            connection: port.id.clone(),
            reason: format!("active connection vanished: {}", describe(&e)),
        })?;
        match state {
            ACTIVE_ACTIVATED => {
                return Ok(Outcome::Activated {
                    connection: port.id,
                    uuid: port.uuid,
                    controller: port.controller,
                })
            }
            ACTIVE_DEACTIVATING | ACTIVE_DEACTIVATED => {
                return Err(BusError::Activation {
                    ifname: ifname.to_string(),
                    connection: port.id,
                    reason: format!("active connection state {state} (deactivat(ing|ed))"),
                })
            }
            _ => {}
        }
        if started.elapsed() >= budget {
            return Ok(Outcome::Activating {
                connection: port.id,
                uuid: port.uuid,
                controller: port.controller,
            });
        }
        sleep(POLL).await;
    }
}

async fn active_proxy(
    bus: &Bus,
    path: OwnedObjectPath,
) -> Result<ActiveConnectionProxy<'static>, BusError> {
    ActiveConnectionProxy::builder(bus.connection())
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(BusError::call("active connection proxy"))
}

fn describe(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, Some(msg), _) => format!("{}: {msg}", name.as_str()),
        zbus::Error::MethodError(name, None, _) => name.as_str().to_string(),
        other => other.to_string(),
    }
}
