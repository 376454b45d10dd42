//! The early (`setup`) and late (`rebind`) stages for one PF, replacing the seed's
//! `mlnx-vflag-early` / `mlnx-vflag-final` scripts. All kernel access goes through
//! [`crate::device`]; this module decides what to do and in which order.
//!
//! Early stage order (what works on mlx5): guards that change nothing → devlink params (legacy
//! only) → VFs (autoprobe off, 0 then N if needed, bounded wait for `virtfn*`) → unbind VFs →
//! eswitch switchdev (only if not already) → wait for all representors → hw-tc-offload on PF and
//! representors → channels → verify the end state.
//!
//! Late stage: the PF must be in a bond that is valid for VF-LAG (mode active-backup,
//! balance-xor or 802.3ad; exactly the LAG's PFs as members); wait (bounded by `lag_timeout`,
//! without holding the NIC lock) for the LAG to be active where it can be seen (mlx5 debugfs
//! `lag/state`, authoritative; else the kernel log: a logged failure refuses at once, silence
//! binds with a warning); restore autoprobe; bind each VF to the driver it had.
//!
//! Both stages hold a per-NIC `flock` (`/run/vflag/nic-<dddd:bb:dd>.lock`) while writing, so the
//! two PFs of a card, or a restart, never interleave. A restart of a configured, enslaved PF
//! changes nothing and reports the state.
//!
//! Every wait is bounded by min(its own cap in [`Timeouts`], the unit's time left): it ends with
//! its own error before systemd would kill the unit (see [`crate::budget`]).
//!
//! Where a VF goes back to: the driver it was unbound from (recorded in
//! `/run/vflag/<pf>.json` before the unbind). VFs that never had a driver (created with
//! autoprobe off) are handed to `/sys/bus/<bus>/drivers_probe`, which matches a driver exactly as
//! autoprobe would have (modalias, and `driver_override` if an administrator set one). So no
//! driver name is ever assumed.

mod eswitch;
mod lock;
mod rebind;
mod setup;
mod state;
#[cfg(test)]
mod testkit;

pub use lock::{lock_nic, lock_nic_within, nic_lock_path, NicLock};
pub use rebind::{rebind, rebind_with};
pub use setup::{setup, setup_with};
pub use state::{representor_names_flag, state_path, State, VfRecord};

use crate::budget::{Budget, Waited};
use crate::config::Lag;
use crate::device::net::Net;
use crate::device::sysfs::Pf;
use crate::device::Error as DevError;
use crate::names::IfName;
use crate::paths::Root;
use std::time::{Duration, Instant};
use tracing::warn;

/// VF-LAG does not activate with more VFs than this per PF (mlx5).
pub const LAG_MAX_VFS: u32 = 64;

/// Bond modes whose TX type mlx5 can offload (ACTIVEBACKUP or HASH).
pub const LAG_BOND_MODES: [&str; 3] = ["active-backup", "balance-xor", "802.3ad"];

/// Bounds of every wait (nothing waits forever, nothing sleeps a fixed time).
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// `virtfn*` links after writing `sriov_numvfs` (VF creation is asynchronous).
    pub vfs: Duration,
    /// All N representors after switchdev.
    pub representors: Duration,
    /// The per-NIC lock (the other PF's stage may be running).
    pub lock: Duration,
    /// A VF's `driver` link after bind.
    pub bind: Duration,
    /// The unit's deadline, shared by all the waits above (each ends at min(cap, time left)).
    pub budget: Budget,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            vfs: Duration::from_secs(120),
            representors: Duration::from_secs(60),
            lock: Duration::from_secs(300),
            bind: Duration::from_secs(30),
            budget: Budget::unlimited(),
        }
    }
}

impl Timeouts {
    /// The default caps, under the deadline of the unit running this stage.
    pub fn for_unit(root: &Root, lag: &Lag) -> Self {
        Timeouts {
            budget: Budget::from_env(root, lag.setup_timeout_max),
            ..Timeouts::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A guard refused; nothing was changed.
    #[error("{pf}: {reason} (nothing was changed)")]
    Refused { pf: String, reason: String },
    /// A kernel operation failed.
    /// The device error is part of the message, not a `source()`: no repetition in `{:#}`.
    #[error("{pf}: {step}: {cause}")]
    Device {
        pf: String,
        step: &'static str,
        cause: DevError,
    },
    /// The late stage did not bind the VFs, and why.
    #[error("{pf}: {reason}; VFs were not bound")]
    NotBound { pf: String, reason: String },
    /// The steps ran but the end state is not what was asked for.
    #[error("{pf}: set-up incomplete: {}", problems.join("; "))]
    Incomplete { pf: String, problems: Vec<String> },
    #[error("{pf}: {msg}")]
    Other { pf: String, msg: String },
}

/// What a stage did or found; [`Report::status`] is the one-line sd_notify STATUS.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub pf: String,
    pub stage: &'static str,
    pub vfs: u32,
    pub eswitch: Option<String>,
    /// hw-tc-offload on the PF and every representor.
    pub offload: Option<bool>,
    pub representors: Option<usize>,
    /// Late stage: VFs bound to a driver now.
    pub bound: Option<usize>,
    /// Late stage: `bond0 802.3ad`.
    pub bond: Option<String>,
    /// Late stage: `active`, `not observable`...
    pub lag: Option<String>,
    /// Whether this run changed anything (false on a restart of a configured PF).
    pub changed: bool,
    pub warnings: Vec<String>,
}

impl Report {
    /// e.g. "8 VFs, switchdev, offload on, 8 representors" or
    /// "8 VFs bound, bond0 802.3ad, LAG active".
    pub fn status(&self) -> String {
        let mut parts = vec![];
        match self.bound {
            Some(b) => parts.push(format!("{b} VFs bound")),
            None => parts.push(format!("{} VFs", self.vfs)),
        }
        if let Some(m) = &self.eswitch {
            parts.push(m.clone());
        }
        if let Some(o) = self.offload {
            parts.push(format!("offload {}", if o { "on" } else { "off" }));
        }
        if let Some(r) = self.representors {
            parts.push(format!("{r} representors"));
        }
        if let Some(b) = &self.bond {
            parts.push(b.clone());
        }
        if let Some(l) = &self.lag {
            parts.push(format!("LAG {l}"));
        }
        if !self.changed {
            parts.push("unchanged".into());
        }
        parts.join(", ")
    }

    fn warn(&mut self, msg: String) {
        warn!(pf = %self.pf, step = self.stage, "{msg}");
        self.warnings.push(msg);
    }
}

/// What to do when a wait runs out (after "gave up waiting for X after N s").
const HINT_VFS: &str = "check `dmesg` for the PF's driver (firmware NUM_OF_VFS, SR-IOV in the BIOS); a slow NIC may need a higher setup-timeout-max in vflag.conf";
const HINT_REPS: &str = "check `dmesg` and `devlink port show`; a slow eswitch change may need a higher setup-timeout-max in vflag.conf";
const HINT_DRIVER: &str = "check `dmesg` for the VF's driver";

/// Time the late stage keeps for the lock and the binds after waiting for the bond and the LAG.
const BIND_RESERVE: Duration = Duration::from_secs(10);

/// Less than this left (with every extension): the eswitch change is not started.
const MIN_FOR_ESWITCH: Duration = Duration::from_secs(10);

/// A bounded wait's end as a stage error: the device's own error, or "gave up waiting" + hint.
fn waited<'a>(
    pf: &'a IfName,
    step: &'static str,
    hint: &'a str,
) -> impl Fn(Waited<DevError>) -> StageError + 'a {
    move |w| match w {
        Waited::Failed(e) => dev_err(pf, step)(e),
        Waited::Expired(e) => StageError::Other {
            pf: pf.to_string(),
            msg: format!("{step}: {e}; {hint}"),
        },
    }
}

fn dev_err<'a>(pf: &'a IfName, step: &'static str) -> impl Fn(DevError) -> StageError + 'a {
    move |cause| StageError::Device {
        pf: pf.to_string(),
        step,
        cause,
    }
}

fn refused(pf: &IfName, reason: impl Into<String>) -> StageError {
    StageError::Refused {
        pf: pf.to_string(),
        reason: reason.into(),
    }
}

fn open_pf(root: &Root, lag: &Lag, pf: &IfName) -> Result<Pf, StageError> {
    if !lag.has_pf(pf) {
        return Err(refused(pf, format!("is not a PF of LAG {}", lag.name)));
    }
    Pf::open(root, pf).map_err(|e| match e {
        DevError::NotFound(m) | DevError::Unsupported(m) => refused(pf, m),
        e => dev_err(pf, "open")(e),
    })
}

/// The bond (or other master) the PF is enslaved to: sysfs `master`, or IFLA_MASTER/IFF_SLAVE.
fn master_of(dev: &Pf, net: &mut dyn Net) -> Result<Option<String>, StageError> {
    let pf = &dev.name;
    if let Some(m) = dev.master().map_err(dev_err(pf, "read master"))? {
        return Ok(Some(m));
    }
    let link = net
        .link(dev.ifindex().map_err(dev_err(pf, "read ifindex"))?)
        .map_err(dev_err(pf, "rtnetlink"))?;
    match link.master {
        Some(m) => Ok(Some(
            net.link(m)
                .map(|l| l.name)
                .unwrap_or_else(|_| format!("#{m}")),
        )),
        None if link.is_slave() => Ok(Some("a bond".into())),
        None => Ok(None),
    }
}

/// Both stages begin here: the PF's device, and the LAG narrowed to this PF and the other port
/// of its NIC.
fn open_paired(root: &Root, lag: &Lag, pf: &IfName) -> Result<(Pf, Lag), StageError> {
    Ok((open_pf(root, lag, pf)?, paired(root, lag, pf)?))
}

/// The LAG narrowed to this PF and the other port of its NIC (a multi-NIC `SRIOV_PFS`).
fn paired(root: &Root, lag: &Lag, pf: &IfName) -> Result<Lag, StageError> {
    crate::pairing::resolve(root, lag, pf, crate::pairing::PARTNER_WAIT).map_err(|m| refused(pf, m))
}

/// Time left until `deadline` (zero when past: the wait then looks once).
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// A kernel driver name as it may appear under `/sys/bus/<bus>/drivers/`: one path component
/// (no `/`, not `.` or `..`), printable, at most 64 bytes.
pub fn valid_driver_name(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 64
        && d != "."
        && d != ".."
        && !d.contains('/')
        && d.chars().all(|c| c.is_ascii_graphic())
}

/// The driver VFs are given to for PCI passthrough to VMs.
const VFIO_DRIVER: &str = "vfio-pci";

/// PCI vendor ID of Mellanox/NVIDIA.
const MLX5_VENDOR: u16 = 0x15b3;
