//! D-Bus peers: NetworkManager, systemd-networkd, systemd (network-scripts).
//!
//! vflag only ever talks to the network stack to keep it away from a PF while the PF is being
//! set up (hot-plug), and to hand the PF back afterwards. At boot, unit ordering does that job
//! (`vflag@<pf>.service` runs before `network-pre.target`), so nothing here is needed for a
//! normal boot, and nothing here may make a host without a given stack fail.
//!
//! zbus 6 has no blocking API: every public function runs its calls inside one
//! [`zbus::block_on`], and every call is bounded: the connection's `method_timeout` bounds each
//! method call, and [`Bus::timeout`] bounds each public operation as a whole (connection
//! set-up included), so a hung peer can never hang a boot unit.
//!
//! The system bus address comes from zbus, which honours `DBUS_SYSTEM_BUS_ADDRESS`; the tests
//! point it at a private `dbus-daemon`.

mod networkd;
mod nm;
mod scripts;
mod timer;

use crate::config::NetworkStack;
use crate::device::sysfs;
use crate::names::IfName;
use crate::paths::Root;
use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use timer::sleep;

/// Well-known bus names of the peers.
pub const NM_NAME: &str = "org.freedesktop.NetworkManager";
pub const NETWORKD_NAME: &str = "org.freedesktop.network1";
pub const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";

/// The sysv-generated unit of RHEL/Rocky `network-scripts` (`/etc/rc.d/init.d/network`).
pub const NETWORK_SCRIPTS_UNIT: &str = "network.service";
/// Debian's ifupdown (`ifup -a` at boot, `/etc/network/interfaces`).
pub const IFUPDOWN_UNIT: &str = "networking.service";

/// Default bound for one public operation (connect + all its calls).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The network stack that owns the PFs on this host, as far as vflag is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    NetworkManager,
    Networkd,
    NetworkScripts,
    /// No known stack runs (or the bus is unreachable): nothing to hold, nothing to hand back.
    None,
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stack::NetworkManager => "NetworkManager",
            Stack::Networkd => "systemd-networkd",
            Stack::NetworkScripts => "network-scripts",
            Stack::None => "none",
        })
    }
}

/// What a [`hold`] or [`release`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was done, and that is fine (e.g. the stack is not running); the reason says why.
    Skipped(String),
    /// NetworkManager: the device was set `Managed=false`.
    Held,
    /// NetworkManager: the device is managed again but no bond-port connection for it was found;
    /// NetworkManager's own autoconnect decides what happens next.
    ManagedNoPortConnection,
    /// NetworkManager: the bond-port connection is active on the device.
    Activated {
        connection: String,
        uuid: String,
        controller: String,
    },
    /// NetworkManager: activation was started but had not finished within the time bound.
    Activating {
        connection: String,
        uuid: String,
        controller: String,
    },
    /// systemd-networkd: `ReconfigureLink` was called for the link.
    Reconfigured { ifindex: i32 },
    /// network-scripts (or ifupdown): a unit that brings the interface up was started.
    UnitStarted { unit: String, job: String },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Skipped(why) => write!(f, "skipped: {why}"),
            Outcome::Held => f.write_str("held back from NetworkManager (Managed=false)"),
            Outcome::ManagedNoPortConnection => {
                f.write_str("managed by NetworkManager again; no bond-port connection found")
            }
            Outcome::Activated {
                connection,
                uuid,
                controller,
            } => {
                write!(
                    f,
                    "bond port connection {connection:?} ({uuid}) of {controller} active"
                )
            }
            Outcome::Activating {
                connection,
                uuid,
                controller,
            } => write!(
                f,
                "bond port connection {connection:?} ({uuid}) of {controller} still activating"
            ),
            Outcome::Reconfigured { ifindex } => {
                write!(f, "systemd-networkd reconfigured link {ifindex}")
            }
            Outcome::UnitStarted { unit, job } => write!(f, "started {unit} (job {job})"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to the system bus: {0}")]
    Connect(#[source] zbus::Error),
    #[error("{what} timed out after {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("{0} is not running (its bus name has no owner)")]
    NotRunning(&'static str),
    #[error("NetworkManager knows no device {0}")]
    UnknownDevice(String),
    #[error("NetworkManager failed to activate {connection:?} on {ifname}: {reason}")]
    Activation {
        ifname: String,
        connection: String,
        reason: String,
    },
    #[error("cannot read the ifindex of {ifname}: {reason}")]
    Ifindex { ifname: String, reason: String },
    #[error("no way to bring {0} up with network-scripts or ifupdown was found")]
    NoIfup(String),
    #[error("{what}: {source}")]
    Call {
        what: String,
        #[source]
        source: zbus::Error,
    },
}

impl BusError {
    pub(crate) fn call(what: impl Into<String>) -> impl FnOnce(zbus::Error) -> BusError {
        let what = what.into();
        move |source| BusError::Call { what, source }
    }
}

/// The D-Bus error name of a method error reply (e.g. `org.freedesktop.NetworkManager.UnknownDevice`).
pub(crate) fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

/// A connection to the system bus (or any bus, for tests).
#[derive(Debug, Clone)]
pub struct Bus {
    conn: zbus::Connection,
    timeout: Duration,
}

impl Bus {
    /// Connect to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` if set, else the standard socket).
    /// `timeout` bounds the connection and, later, each public operation on it.
    pub fn system(timeout: Duration) -> Result<Bus, BusError> {
        Self::connect(zbus::conn::Builder::system(), timeout)
    }

    /// Connect to the bus at a D-Bus address such as `unix:path=/run/x`.
    pub fn at(address: &str, timeout: Duration) -> Result<Bus, BusError> {
        Self::connect(zbus::conn::Builder::address(address), timeout)
    }

    fn connect(builder: zbus::conn::Builder<'_>, timeout: Duration) -> Result<Bus, BusError> {
        let conn = run(timeout, "connecting to the bus", async move {
            builder
                .method_timeout(timeout)
                .build()
                .await
                .map_err(BusError::Connect)
        })?;
        Ok(Bus { conn, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn connection(&self) -> &zbus::Connection {
        &self.conn
    }

    /// Whether a well-known name currently has an owner. Never activates the service.
    pub fn name_has_owner(&self, name: &str) -> Result<bool, BusError> {
        self.run("NameHasOwner", async { self.has_owner(name).await })
    }

    pub(crate) async fn has_owner(&self, name: &str) -> Result<bool, BusError> {
        let what = format!("NameHasOwner({name})");
        let dbus = zbus::fdo::DBusProxy::new(&self.conn)
            .await
            .map_err(BusError::call(&*what))?;
        let bus_name =
            zbus::names::BusName::try_from(name).map_err(|e| BusError::call(&*what)(e))?;
        dbus.name_has_owner(bus_name)
            .await
            .map_err(|e| BusError::call(&*what)(e.into()))
    }

    /// Run one operation on this connection, bounded by [`Bus::timeout`].
    pub(crate) fn run<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, BusError>>,
    ) -> Result<T, BusError> {
        run(self.timeout, what, fut)
    }
}

/// `zbus::block_on(fut)`, failing with [`BusError::Timeout`] once `after` has passed.
fn run<T>(
    after: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, BusError>>,
) -> Result<T, BusError> {
    zbus::block_on(timer::deadline(after, fut)).unwrap_or_else(|| {
        Err(BusError::Timeout {
            what: what.to_string(),
            after,
        })
    })
}

/// Map the configured stack to the one to talk to; `Auto` asks the bus ([`detect`]).
/// A bus that cannot be reached makes `Auto` resolve to [`Stack::None`], never an error.
pub fn choose(config: NetworkStack, bus: Option<&Bus>) -> Stack {
    match config {
        NetworkStack::NetworkManager => Stack::NetworkManager,
        NetworkStack::SystemdNetworkd => Stack::Networkd,
        NetworkStack::NetworkScripts => Stack::NetworkScripts,
        NetworkStack::Auto => bus.map(detect).unwrap_or(Stack::None),
        // "none": vflag neither holds back nor hands over the ports.
        NetworkStack::None => Stack::None,
    }
}

/// Which stack manages this host: the first of NetworkManager (its name is owned),
/// systemd-networkd (`org.freedesktop.network1` is owned), network-scripts (`network.service`,
/// or Debian ifupdown's `networking.service`, is active) — else [`Stack::None`]. Errors while
/// asking count as "not this one".
pub fn detect(bus: &Bus) -> Stack {
    let found = bus.run("detecting the network stack", async {
        if bus.has_owner(NM_NAME).await.unwrap_or(false) {
            return Ok(Stack::NetworkManager);
        }
        if bus.has_owner(NETWORKD_NAME).await.unwrap_or(false) {
            return Ok(Stack::Networkd);
        }
        if scripts::ifup_stack_active(bus).await.unwrap_or(false) {
            return Ok(Stack::NetworkScripts);
        }
        Ok(Stack::None)
    });
    match found {
        Ok(stack) => stack,
        Err(e) => {
            tracing::warn!("cannot detect the network stack, assuming none: {e}");
            Stack::None
        }
    }
}

/// The unit every network stack is ordered after, and vflag's early units before.
pub const NETWORK_PRE: &str = "network-pre.target";

/// Is this the boot, before any network stack can act on a port? `network-pre.target` is not
/// active (the early units are ordered before it and every stack after it, so none can start
/// before they end) and no stack is running ([`detect`]). Any error asking is "no": the caller
/// then holds the port as after boot.
pub fn before_network(bus: &Bus) -> bool {
    let pre_active = bus.run("asking systemd about network-pre.target", async {
        if !bus.has_owner(SYSTEMD_NAME).await? {
            return Err(BusError::NotRunning("systemd"));
        }
        scripts::unit_active(bus, NETWORK_PRE).await
    });
    match pre_active {
        Ok(false) => detect(bus) == Stack::None,
        Ok(true) => false,
        Err(e) => {
            tracing::debug!("{e}: taking the network stacks to be running");
            false
        }
    }
}

/// Keep `stack` away from `ifname` while vflag configures it.
///
/// Only NetworkManager can be told this over D-Bus (`Managed=false`, not persistent, lost when
/// the device goes away). systemd-networkd and network-scripts are held back by the udev rules
/// (see `crate::hotplug`) or by unit ordering; for them this reports [`Outcome::Skipped`].
/// A stack that is not running is not an error.
pub fn hold(bus: &Bus, stack: Stack, ifname: &IfName) -> Result<Outcome, BusError> {
    match stack {
        Stack::NetworkManager => bus.run(
            "holding the device in NetworkManager",
            nm::hold(bus, ifname),
        ),
        Stack::Networkd => Ok(Outcome::Skipped(
            "systemd-networkd is held back by udev (ID_NET_MANAGED_BY), not over D-Bus".into(),
        )),
        Stack::NetworkScripts => Ok(Outcome::Skipped(
            "network-scripts does not act on hot-plug by itself; nothing to hold".into(),
        )),
        Stack::None => Ok(Outcome::Skipped("no network stack".into())),
    }
}

/// Hand `ifname` (a PF whose set-up is finished) back to `stack` and bring its bond port up.
///
/// - NetworkManager: `Managed=true` (an explicit D-Bus decision overrides the udev
///   `NM_UNMANAGED` hold), then activate the bond-port connection for the interface, unless the
///   device already runs it; the result of the activation is reported.
/// - systemd-networkd: `ReconfigureLink(ifindex)`.
/// - network-scripts: start the interface's ifup through systemd (see `scripts`).
/// - For networkd and network-scripts, a port that is already enslaved is left alone.
///
/// A stack that is not running yields [`Outcome::Skipped`], not an error.
pub fn release(bus: &Bus, root: &Root, stack: Stack, ifname: &IfName) -> Result<Outcome, BusError> {
    match stack {
        Stack::NetworkManager => bus.run(
            "handing the device back to NetworkManager",
            nm::release(bus, root, ifname),
        ),
        // ReconfigureLink / ifup on a port that is already enslaved blips it out of the bond
        // (seen with networkd 252 in the guest: "link status definitely down" for ~1 s).
        Stack::Networkd | Stack::NetworkScripts if master_of(root, ifname).is_some() => {
            Ok(Outcome::Skipped(format!(
                "{ifname} is already a port of {}; not reconfiguring it",
                master_of(root, ifname).unwrap_or_default()
            )))
        }
        Stack::Networkd => {
            let ifindex = ifindex(root, ifname)?;
            bus.run(
                "reconfiguring the link in systemd-networkd",
                networkd::reconfigure(bus, ifindex),
            )
        }
        Stack::NetworkScripts => bus.run(
            "bringing the interface up with network-scripts",
            scripts::ifup(bus, root, ifname),
        ),
        Stack::None => Ok(Outcome::Skipped("no network stack".into())),
    }
}

/// Will the stack leave a port that is in no bond alone, so that only a hand-over
/// ([`release`]) puts it into its bond? NetworkManager: only while it keeps the device
/// unmanaged ([`nm::leaves_unmanaged`] over `settle`); a device it manages it enslaves by its own
/// autoconnect, and activating the port beside that made NetworkManager 1.42 activate the bond
/// twice and delete it (cx-slow-switchdev-nm on a loaded host: no bond at all). Other stacks
/// (and none) act only when asked: yes.
pub fn leaves_port(
    bus: &Bus,
    stack: Stack,
    ifname: &IfName,
    settle: Duration,
) -> Result<bool, BusError> {
    match stack {
        Stack::NetworkManager => bus.run(
            "asking NetworkManager whether it manages the port",
            nm::leaves_unmanaged(bus, ifname, settle),
        ),
        Stack::Networkd | Stack::NetworkScripts | Stack::None => Ok(true),
    }
}

/// The bond (or other controller) a netdev is enslaved to, from `/sys/class/net/<if>/master`.
pub fn master_of(root: &Root, ifname: &IfName) -> Option<String> {
    sysfs::netdev_master(root, ifname.as_str())
}

/// The kernel ifindex of `ifname`, from `/sys/class/net/<if>/ifindex`.
pub fn ifindex(root: &Root, ifname: &IfName) -> Result<i32, BusError> {
    let err = |reason: String| BusError::Ifindex {
        ifname: ifname.to_string(),
        reason,
    };
    match sysfs::netdev_ifindex(root, ifname.as_str()) {
        Ok(Some(i)) => i32::try_from(i)
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| err(format!("not a positive ifindex: {i}"))),
        Ok(None) => Err(err(format!(
            "{}: {}",
            sysfs::netdev_dir(root, ifname.as_str())
                .join("ifindex")
                .display(),
            std::io::Error::from_raw_os_error(nix::errno::Errno::ENOENT as i32)
        ))),
        Err(e) => Err(err(e.to_string())),
    }
}
