//! mlx5 LAG lines in the kernel log, in every format the kernel has used.
//!
//! The mlx5 driver has announced LAG (bond offload) state changes in several ways over the years;
//! all are recognised here (the device prefix `mlx5_core 0000:37:00.0: ` is the driver's
//! `dev_info` prefix and is shown once):
//!
//! | kernel era | lines |
//! | --- | --- |
//! | oldest | `lag map port 1:2 port 2:2` on creation, `modify lag map port 1:1 port 2:2` on failover |
//! | shared FDB | `lag map port 1:1 port 2:1 shared_fdb:1`, then `... shared_fdb:1 mode:hash` |
//! | multi-port | creation: `lag map:`, one `\tport N:M` record per port, `shared_fdb:%d mode:%s`; failover: `modify lag map`, one `\tmap port N:M` record per port |
//! | newest | `lag map: port 1:1 port 2:2` (or `lag map active ports: 1, 2` in hash mode) then `shared_fdb:%d mode:%s`; remaps print the map line again |
//!
//! plus `Operation mode is single FDB`, `Failed to create LAG (%d)`, `Failed to modify LAG (%d)`,
//! `Failed to activate VF LAG`, `Can't enable single FDB mode`, `Failed to enable lag`,
//! `Failed to deactivate VF LAG; ...`, and the two refusals that the driver returns as netlink
//! extended-ack warnings ("Can't activate LAG offload, TX type isn't supported" and "... PF is
//! configured with more than 64 VFs"). Those two reach a log only through the program that
//! enslaved the PF (iproute2 prints `Warning: mlx5_core: ...`), so they are recognised anywhere in
//! a line and, without a PCI address in the line, reported as unattributed.
//!
//! Note: a `lag map` line alone does not prove VF-LAG: the same lines are printed for a RoCE LAG
//! (PFs bonded while in legacy mode), and on the newest kernels the map is printed *before* the
//! firmware command that may still fail. The debugfs `lag/type` file ("switchdev" vs "roce")
//! tells the two apart; [`read_debugfs_lag`] reads it.
//!
//! Lines are keyed by the device `dev_printk` names in its `<driver> <device>: ` prefix: the PCI
//! address for `mlx5_core`, and any other driver's device name too (the test bed's ConnectX
//! model logs mlx5's lines as `netdevsim netdevsim10: lag map: ...`); [`LagReport::mlx5_format`]
//! lists the devices that logged mlx5's eSwitch or LAG lines at all.
//!
//! Input lines may come from `/dev/kmsg` (`prio,seq,usec,flags;message`, dictionary continuation
//! lines start with a space, non-printable bytes escaped as `\xNN`), from `dmesg`
//! (`[   44.064025] mlx5_core ...`), or from `journalctl -k` (`Nov 25 ... kernel: mlx5_core ...`).
//!
//! OVS's `failed to offload flow: <reason>: <port>` log lines are parsed by
//! [`parse_ovs_offload_error`].

use std::collections::BTreeMap;

use serde::Serialize;

mod classify;
mod fold;
mod line;
mod ovs;
mod read;

pub use classify::{mlx5_format_devices, parse_events};
pub use fold::fold_events;
pub use line::{parse_line, LogLine};
pub use ovs::{parse_ovs_offload_error, read_ovs_offload_errors, OffloadError};
pub use read::{debugfs_lag_dir, kmsg_lag_report, read_debugfs_lag, read_kmsg, DebugfsLag};

/// Where a log line came from in time. Every field is optional because each log format carries a
/// different subset; `line` (0-based position in the input) always orders events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// Microseconds since boot (kmsg `usec` field, or the dmesg `[seconds.micros]` prefix).
    pub usec: Option<u64>,
    /// kmsg sequence number.
    pub seq: Option<u64>,
    /// Position of the line in the input given to the parser.
    pub line: usize,
}

/// One `port N:M` pair of a LAG map: traffic of virtual port `port` leaves through physical
/// port `to` (so `1:2 2:2` means everything goes out of port 2, i.e. port 1 is down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortMap {
    pub port: u8,
    pub to: u8,
}

/// Why the LAG is not (or no longer) offloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "code")]
pub enum LagFailure {
    /// `Failed to create LAG (%d)`: the firmware refused; the code is the errno-style value.
    Create(i32),
    /// `Failed to create LAG port selection(%d)` (hash mode).
    PortSelection(i32),
    /// `Failed to activate VF LAG` (usually after one of the above; VFs must be unbound).
    ActivateVfLag,
    /// `Can't enable single FDB mode`.
    SingleFdb,
    /// `Failed to enable lag` (representor reload failed after activation; LAG torn down).
    Enable,
    /// `Failed to deactivate VF LAG; driver restart required` (or the RoCE variant).
    Deactivate,
    /// "Can't activate LAG offload, TX type isn't supported" (bond mode not active-backup/hash).
    TxTypeNotSupported,
    /// "Can't activate LAG offload, PF is configured with more than 64 VFs".
    TooManyVfs,
}

impl LagFailure {
    /// A short operator hint for this failure.
    pub fn hint(&self) -> &'static str {
        match self {
            LagFailure::Create(_) | LagFailure::ActivateVfLag | LagFailure::PortSelection(_) => {
                "firmware refused the LAG: make sure all VFs are unbound before the PFs join the bond"
            }
            LagFailure::SingleFdb => "shared FDB could not be enabled (check firmware version)",
            LagFailure::Enable => "representors could not be reloaded; LAG was torn down",
            LagFailure::Deactivate => "LAG could not be deactivated; a driver restart is required",
            LagFailure::TxTypeNotSupported => {
                "bond mode must be active-backup, balance-xor or 802.3ad"
            }
            LagFailure::TooManyVfs => "at most 64 VFs per PF are supported with VF-LAG",
        }
    }
}

/// Which kind of map line was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapChange {
    /// `lag map port ...`, or the multi-line `lag map:` + `\tport N:M` group: printed only
    /// when the LAG is created.
    Create,
    /// `modify lag map port ...`, or the multi-line `modify lag map` + `\tmap port N:M` group:
    /// a failover remap.
    Modify,
    /// `lag map: port ...` or `lag map active ports: ...` (newest kernels): printed both on
    /// creation (then followed by a `shared_fdb:` line) and on remap.
    CreateOrModify,
}

/// What one recognised log line (or multi-line group) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum LagEventKind {
    /// A port map. `shared_fdb`/`mode` are set when the same line carried them (the 5.x
    /// single-line formats).
    Map {
        change: MapChange,
        ports: Vec<PortMap>,
        shared_fdb: Option<bool>,
        mode: Option<String>,
    },
    /// `lag map active ports: 1, 2` (hash mode on the newest kernels; creation or remap).
    ActivePorts { ports: Vec<u8> },
    /// A stand-alone `shared_fdb:%d mode:%s` line (printed on creation by newer kernels).
    SharedFdb {
        shared_fdb: bool,
        mode: Option<String>,
    },
    /// `Operation mode is single FDB`.
    SingleFdb,
    /// `Failed to modify LAG (%d)`: the LAG stays up with its previous map.
    ModifyFailed { code: i32 },
    /// A failure or refusal: the LAG is not offloaded.
    Failure { reason: LagFailure },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LagEvent {
    pub at: Stamp,
    /// PCI address (`0000:37:00.0`) of the device that logged it, when known.
    pub device: Option<String>,
    #[serde(flatten)]
    pub kind: LagEventKind,
}

/// The state a device's kernel log implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LagState {
    Active {
        /// Latest port map (empty when only `active ports` were logged).
        ports: Vec<PortMap>,
        /// Hash mode on the newest kernels: the ports that carry traffic.
        active_ports: Option<Vec<u8>>,
        shared_fdb: Option<bool>,
        /// `queue_affinity`, `hash` or `mpesw` where the kernel said so.
        mode: Option<String>,
        single_fdb: bool,
        /// When the LAG was (last) created.
        since: Stamp,
        /// Map changes (failovers) logged since then.
        remaps: u32,
    },
    Failed {
        reason: LagFailure,
        at: Stamp,
    },
}

impl LagState {
    pub fn is_active(&self) -> bool {
        matches!(self, LagState::Active { .. })
    }
}

/// Everything the log says about one PCI device (the LAG's first PF logs for the pair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceLag {
    pub device: String,
    pub state: LagState,
    /// The newest event for this device.
    pub last_event: LagEvent,
    /// The newest `Failed to modify LAG` (LAG kept running with its old map), if any.
    pub last_modify_failure: Option<LagEvent>,
    /// Number of recognised events for this device.
    pub events: usize,
}

/// The outcome of parsing a log: per PCI device state, plus recognised lines that named no
/// PCI device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LagReport {
    pub devices: BTreeMap<String, DeviceLag>,
    pub unattributed: Vec<LagEvent>,
    /// Devices that logged mlx5-format eSwitch or LAG lines ([`mlx5_format_devices`]).
    #[serde(skip)]
    pub mlx5_format: std::collections::BTreeSet<String>,
}

impl LagReport {
    /// The entry for `pci`, or for another function of the same NIC (the kernel logs LAG
    /// lines on the pair's first PF only, so asking for `0000:37:00.1` finds `0000:37:00.0`).
    pub fn for_pf(&self, pci: &str) -> Option<&DeviceLag> {
        if let Some(d) = self.devices.get(pci) {
            return Some(d);
        }
        let nic = nic_of(pci)?;
        self.devices
            .values()
            .find(|d| nic_of(&d.device) == Some(nic))
    }
}

/// `0000:37:00.1` -> `0000:37:00` (domain, bus, device: one physical NIC).
fn nic_of(pci: &str) -> Option<&str> {
    pci.rsplit_once('.').map(|(nic, _)| nic)
}

/// Parse lines (any supported format, mixed) into a per-device LAG report.
pub fn parse_lag<S: AsRef<str>>(lines: &[S]) -> LagReport {
    LagReport {
        mlx5_format: mlx5_format_devices(lines),
        ..fold_events(parse_events(lines))
    }
}
