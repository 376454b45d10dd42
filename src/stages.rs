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

use crate::budget::{Budget, Waited};
use crate::config::{EswitchMode as ConfEswitch, Lag};
use crate::device::devlink::{EswitchMode, Handle};
use crate::device::ethtool::{Channels, Feature, HW_TC_OFFLOAD};
use crate::device::net::{Kernel, Net};
use crate::device::repr::Representor;
use crate::device::sysfs::{self, wait_for, Pf};
use crate::device::{self, Error as DevError};
use crate::kernlog;
use crate::names::IfName;
use crate::paths::Root;
use nix::fcntl::{Flock, FlockArg};
use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracing::{info, warn};

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

/// What the early stage remembers for the late one: `/run/vflag/<pf>.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Devlink handle of the PF's device; a record for another device is ignored.
    pub device: String,
    /// `sriov_drivers_autoprobe` before vflag turned it off.
    pub autoprobe_before: Option<bool>,
    pub vfs: Vec<VfRecord>,
    pub setup_done: bool,
    /// The PF's `phys_port_name` when set-up began (empty: none), so that udev can give the
    /// configured name back to this physical port if the eswitch change re-creates it.
    #[serde(default)]
    pub port: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VfRecord {
    pub index: u32,
    pub addr: String,
    /// The driver it was unbound from; `None`: never bound (created with autoprobe off).
    pub driver: Option<String>,
}

fn run_dir(root: &Root) -> PathBuf {
    root.path("/run/vflag")
}

/// Present once some LAG wanted its representors named `<pf>r<vf>` (until reboot: a later
/// `representor-names = no` only costs udev a few idle `vflag udev-name` runs): only then does
/// 79-vflag-names.rules ask `vflag udev-name` about representors (one process per representor
/// that udev adds, dozens with the eswitch change, all on the boot's critical path).
pub fn representor_names_flag(root: &Root) -> PathBuf {
    run_dir(root).join("representor-names")
}

pub fn state_path(root: &Root, pf: &IfName) -> PathBuf {
    run_dir(root).join(format!("{}.json", pf.as_str()))
}

impl State {
    /// The record for this PF's current device, or an empty one.
    pub fn load(root: &Root, pf: &IfName, h: &Handle) -> State {
        let fresh = State {
            device: h.to_string(),
            ..State::default()
        };
        let Ok(text) = fs::read_to_string(state_path(root, pf)) else {
            return fresh;
        };
        match serde_json::from_str::<State>(&text) {
            Ok(s) if s.device == fresh.device => s,
            Ok(_) => fresh,
            Err(e) => {
                warn!(pf = %pf, "ignoring unreadable {}: {e}", state_path(root, pf).display());
                fresh
            }
        }
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a record.
    pub fn save(&self, root: &Root, pf: &IfName) -> std::io::Result<()> {
        fs::create_dir_all(run_dir(root))?;
        let path = state_path(root, pf);
        let tmp = path.with_extension("json.tmp");
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        fs::rename(tmp, path)
    }

    fn record(&mut self, vf: &sysfs::Vf, driver: Option<String>) {
        match self.vfs.iter_mut().find(|r| r.index == vf.index) {
            Some(r) if r.addr == vf.addr => {
                if r.driver.is_none() {
                    r.driver = driver;
                }
            }
            Some(r) => {
                *r = VfRecord {
                    index: vf.index,
                    addr: vf.addr.clone(),
                    driver,
                }
            }
            None => self.vfs.push(VfRecord {
                index: vf.index,
                addr: vf.addr.clone(),
                driver,
            }),
        }
        self.vfs.sort_by_key(|r| r.index);
    }
}

/// An exclusive lock for one NIC (both PFs of a card share it), held while a stage runs. The
/// file names its holder (`pid=<pid> unit=<unit>`) so that a waiting stage can say who it waits
/// for; the record is cleared on release.
pub struct NicLock {
    lock: Flock<fs::File>,
    pub path: PathBuf,
}

impl Drop for NicLock {
    fn drop(&mut self) {
        let _ = self.lock.set_len(0);
    }
}

/// The lock file name: the PCI slot (`dddd:bb:dd`) for PCI devices, else the device.
pub fn nic_lock_path(root: &Root, pf: &Pf) -> PathBuf {
    let id = crate::pairing::nic_id(pf);
    run_dir(root).join(format!("nic-{id}.lock"))
}

pub fn lock_nic(root: &Root, pf: &Pf, timeout: Duration) -> Result<NicLock, StageError> {
    lock_nic_within(root, pf, timeout, &Budget::unlimited())
}

/// The unit (or scope) a process runs in, from its cgroup path.
fn unit_of(pid: &str) -> Option<String> {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let last = path.rsplit('/').next()?;
    (last.ends_with(".service") || last.ends_with(".scope")).then(|| last.to_string())
}

/// Who holds the flock on `file`: the holder's own record when /proc/locks confirms it (or
/// cannot be read), else what /proc says of the locking process. `vflag`: the holder is a vflag
/// stage (bounded by its own unit), worth waiting for.
fn lock_holder(path: &std::path::Path) -> (String, bool) {
    use std::os::unix::fs::MetadataExt;
    let record = fs::read_to_string(path).unwrap_or_default();
    let field = |k: &str| {
        record
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(str::to_string)
    };
    let (rpid, runit) = (field("pid="), field("unit="));
    let ino = fs::metadata(path).map(|m| m.ino()).ok();
    let locker = fs::read_to_string("/proc/locks").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // "1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF"; "1: -> FLOCK ..." is a waiter.
            let ok = w.get(1) == Some(&"FLOCK")
                && w.get(5)
                    .and_then(|d| d.rsplit(':').next())
                    .and_then(|i| i.parse::<u64>().ok())
                    == ino;
            ok.then(|| w[4].to_string())
        })
    });
    match (locker, rpid) {
        (Some(l), Some(r)) if l == r => (
            format!("{} (pid {r})", runit.unwrap_or_else(|| "vflag".into())),
            true,
        ),
        (None, Some(r)) => (
            format!("{} (pid {r})", runit.unwrap_or_else(|| "vflag".into())),
            true,
        ),
        (Some(l), _) => {
            // Under the units' sandbox (ProtectProc=invisible, few capabilities) another
            // process's /proc entry is often hidden: then the pid is all there is to say.
            let comm = fs::read_to_string(format!("/proc/{l}/comm"))
                .map(|c| format!(" ({})", c.trim()))
                .unwrap_or_default();
            let unit = unit_of(&l).map(|u| format!(" in {u}")).unwrap_or_default();
            (format!("pid {l}{comm}{unit}"), false)
        }
        (None, None) => ("another process".into(), false),
    }
}

/// Take the NIC lock, waiting at most min(`cap`, the unit's time left). While waiting,
/// `systemctl status` names the holder; a vflag holder is bounded by its own unit, so waiting
/// for it may extend this unit's timeout (up to the ceiling), anything else may not.
pub fn lock_nic_within(
    root: &Root,
    pf: &Pf,
    cap: Duration,
    budget: &Budget,
) -> Result<NicLock, StageError> {
    use std::io::Write as _;
    let pfs = pf.name.to_string();
    let path = nic_lock_path(root, pf);
    let other = |msg: String| StageError::Other {
        pf: pfs.clone(),
        msg,
    };
    fs::create_dir_all(run_dir(root))
        .map_err(|e| other(format!("{}: {e}", run_dir(root).display())))?;
    let open = || {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| other(format!("{}: {e}", path.display())))
    };
    let mut holder = String::new();
    let mut polls = 0;
    let res = budget.wait("the NIC lock", cap, || {
        match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Ok(l)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let (who, vflag) = lock_holder(&path);
                if who != holder {
                    info!(pf = %pf.name, step = "lock", "waiting for the NIC lock held by {who}");
                    budget.status(&format!("waiting for the NIC lock held by {who}"));
                    holder = who;
                }
                polls += 1;
                Ok(Err(if vflag { polls } else { 0 }))
            }
            Err((_, e)) => Err(other(format!("could not lock {}: {e}", path.display()))),
        }
    });
    match res {
        Ok(mut l) => {
            let me = std::process::id();
            let unit = unit_of("self").unwrap_or_else(|| "vflag".into());
            let _ = l.set_len(0);
            let _ = writeln!(&mut *l, "pid={me} unit={unit} pf={}", pf.name);
            Ok(NicLock { lock: l, path })
        }
        Err(Waited::Failed(e)) => Err(e),
        Err(Waited::Expired(e)) => Err(other(format!(
            "could not lock {}: {e}; it is held by {holder} (another stage on this NIC). Check `systemctl status` of that unit; restart this one once it has finished",
            path.display()
        ))),
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

/// The LAG narrowed to this PF and the other port of its NIC (a multi-NIC `SRIOV_PFS`).
fn paired(root: &Root, lag: &Lag, pf: &IfName) -> Result<Lag, StageError> {
    crate::pairing::resolve(root, lag, pf, crate::pairing::PARTNER_WAIT).map_err(|m| refused(pf, m))
}

/// The two PFs of a LAG must be ports of one NIC: same PCI domain:bus:device, other function.
fn check_pair(root: &Root, lag: &Lag, dev: &Pf, report: &mut Report) -> Result<(), StageError> {
    let Some(mine) = dev.pci_addr() else {
        return Ok(()); // not PCI (netdevsim): nothing to compare
    };
    for other in lag.pfs.iter().filter(|p| **p != dev.name) {
        let o = match Pf::open(root, other) {
            Ok(o) => o,
            Err(e) => {
                report.warn(format!("cannot check that {other} is on the same NIC: {e}"));
                continue;
            }
        };
        match o.pci_addr() {
            Some(a) if a.same_slot(&mine) && a.function != mine.function => {}
            Some(_) => {
                return Err(refused(
                    &dev.name,
                    format!(
                        "{} ({}) and {other} ({}) are not two ports of one NIC: VF-LAG needs both ports of the same card",
                        dev.name, dev.dev_name, o.dev_name
                    ),
                ))
            }
            None => report.warn(format!("{other} is not a PCI device; cannot check it shares a NIC with {}", dev.name)),
        }
    }
    Ok(())
}

/// The early stage for one PF. See the module documentation for the order.
pub fn setup(root: &Root, lag: &Lag, pf: &IfName) -> Result<Report, StageError> {
    let mut net = Kernel::open().map_err(dev_err(pf, "open netlink"))?;
    setup_with(root, lag, pf, &mut net, &Timeouts::for_unit(root, lag))
}

pub fn setup_with(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    net: &mut dyn Net,
    t: &Timeouts,
) -> Result<Report, StageError> {
    let dev = open_pf(root, lag, pf)?;
    let lag = &paired(root, lag, pf)?;
    let _lock = lock_nic_within(root, &dev, t.lock, &t.budget)?;
    let h = dev.handle();
    let want = lag.vfs;
    let switchdev = lag.eswitch == ConfEswitch::Switchdev;
    let mut r = Report {
        pf: pf.to_string(),
        stage: "setup",
        vfs: want,
        ..Report::default()
    };
    info!(pf = %pf, step = "guards", device = %h, vfs = want, "checking");

    // ---- Guards: read only.
    let numvfs = dev
        .numvfs()
        .map_err(dev_err(pf, "read sriov_numvfs"))?
        .ok_or_else(|| refused(pf, format!("{h} has no SR-IOV (no sriov_numvfs)")))?;
    let mode = if switchdev {
        Some(
            net.eswitch_mode(&h)
                .map_err(|e| refused(pf, format!("cannot read the eswitch mode of {h}: {e}")))?,
        )
    } else {
        None
    };
    let pf_index = dev.ifindex().map_err(dev_err(pf, "read ifindex"))?;
    let mut st = State::load(root, pf, &h);
    if st.port.is_none() {
        st.port = Some(dev.phys_port_name().ok().flatten().unwrap_or_default());
    }
    if let Some(master) = master_of(&dev, net)? {
        let configured =
            st.setup_done && numvfs == want && (!switchdev || mode == Some(EswitchMode::Switchdev));
        if configured {
            r.eswitch = Some(mode.map_or("legacy".into(), |m| m.to_string()));
            observe(net, &dev, switchdev, &mut r);
            r.warn(format!(
                "already set up and enslaved to {master}: nothing changed"
            ));
            return Ok(r);
        }
        return Err(refused(
            pf,
            format!("is enslaved to {master}; changing SR-IOV or the eswitch of a bonded port can be fatal on mlx5"),
        ));
    }
    if let Some(total) = dev.totalvfs().map_err(dev_err(pf, "read sriov_totalvfs"))? {
        if want > total {
            return Err(refused(pf, format!("{want} VFs requested but the device offers at most {total} (sriov_totalvfs; firmware NUM_OF_VFS?)")));
        }
    }
    if want > LAG_MAX_VFS {
        r.warn(format!(
            "{want} VFs: VF-LAG will not activate with more than {LAG_MAX_VFS} VFs per PF"
        ));
    }
    check_pair(root, lag, &dev, &mut r)?;
    // A VF handed to a VM (vfio-pci) means this is a running set-up, not boot: never pull it.
    for vf in dev.vfs().map_err(dev_err(pf, "list VFs"))? {
        if vf.driver().ok().flatten().as_deref() == Some(VFIO_DRIVER) {
            return Err(refused(
                pf,
                format!("VF {} ({}) is bound to {VFIO_DRIVER}, i.e. in use by a VM; not touching a running set-up", vf.index, vf.addr),
            ));
        }
    }

    // ---- devlink params: only in legacy mode, before switchdev.
    let params = [
        ("flow_steering_mode", &lag.flow_steering_mode),
        ("lag_port_select_mode", &lag.lag_port_select_mode),
    ];
    for (name, value) in params {
        let Some(value) = value else { continue };
        if mode == Some(EswitchMode::Legacy) {
            info!(pf = %pf, step = "param", param = name, value = %value, "setting devlink param");
            match net.set_param(&h, name, value) {
                Ok(Some(old)) => {
                    info!(pf = %pf, step = "param", param = name, "{name}: {old} -> {value}");
                    r.changed = true;
                }
                Ok(None) => {}
                // Not a devlink param of this kernel: NVIDIA OFED has it in compat sysfs.
                Err(
                    e @ (DevError::Kernel {
                        errno: 2 | 22 | 95, ..
                    }
                    | DevError::Unsupported(_)),
                ) => {
                    let file = sysfs::compat_devlink(root, pf, name);
                    match sysfs::read_attr(&file).map_err(dev_err(pf, "compat devlink param"))? {
                        Some(cur) if cur == *value => {}
                        Some(cur) => {
                            info!(pf = %pf, step = "param", param = name, "{name}: {cur} -> {value} via {}", file.display());
                            sysfs::write_attr(&file, value)
                                .map_err(dev_err(pf, "compat devlink param"))?;
                            r.changed = true;
                        }
                        None => return Err(dev_err(pf, "devlink param")(e)),
                    }
                }
                Err(e) => return Err(dev_err(pf, "devlink param")(e)),
            }
        } else if switchdev {
            r.warn(format!("{name}={value} not applied: devlink params are set only in legacy mode, and the eswitch is already {}", mode.map(|m| m.to_string()).unwrap_or_default()));
        }
    }

    // Before any change: representors may appear as soon as the VFs do (mlx5 already in
    // switchdev), and udev names them only if this flag is there.
    if lag.representor_names {
        let flag = representor_names_flag(root);
        fs::write(&flag, "").map_err(|e| StageError::Other {
            pf: pf.to_string(),
            msg: format!("cannot write {}: {e}", flag.display()),
        })?;
    }

    // From here on the PF changes: until this run completes, the late stage must not take an
    // earlier run's success for this one.
    if st.setup_done {
        st.setup_done = false;
        save(&st, root, pf)?;
    }

    // ---- VFs: autoprobe off, then create.
    let autoprobe = dev
        .autoprobe()
        .map_err(dev_err(pf, "read sriov_drivers_autoprobe"))?;
    if numvfs != want {
        if st.autoprobe_before.is_none() {
            st.autoprobe_before = autoprobe;
        }
        // Recorded before it changes: a stage killed in between still knows what to restore.
        save(&st, root, pf)?;
        if autoprobe == Some(true) && want > 0 {
            dev.set_autoprobe(false)
                .map_err(dev_err(pf, "sriov_drivers_autoprobe"))?;
        }
        if numvfs != 0 {
            info!(pf = %pf, step = "vfs", from = numvfs, to = want, "resetting VF count to 0 first");
            dev.set_numvfs(0).map_err(dev_err(pf, "sriov_numvfs 0"))?;
            // Removal is synchronous on PCI; the bounded wait covers anything slower.
            t.budget.status(&format!("removing {numvfs} VFs"));
            t.budget
                .wait(&format!("the old VFs of {pf} to go"), t.vfs, || {
                    let n = dev.vfs()?.len() as u64;
                    Ok(if n == 0 { Ok(()) } else { Err(u64::MAX - n) })
                })
                .map_err(waited(pf, "remove VFs", HINT_VFS))?;
        }
        if want > 0 {
            info!(pf = %pf, step = "vfs", vfs = want, "creating VFs");
            t.budget.status(&format!("creating {want} VFs"));
            t.budget
                .during(|| dev.set_numvfs(want))
                .map_err(dev_err(pf, "sriov_numvfs"))?;
        }
        r.changed = true;
    }
    let vfs = if dev.is_pci() && want > 0 {
        let mut shown = None;
        t.budget
            .wait(&format!("{want} VF links of {pf}"), t.vfs, || {
                let vfs = dev.vfs()?;
                let k = (0..want)
                    .filter(|i| vfs.iter().any(|v| v.index == *i))
                    .count() as u64;
                if shown != Some(k) {
                    t.budget.status(&format!("creating {want} VFs: {k}/{want}"));
                    shown = Some(k);
                }
                Ok(if k == want as u64 { Ok(vfs) } else { Err(k) })
            })
            .map_err(waited(pf, "wait for VFs", HINT_VFS))?
    } else {
        // netdevsim has no VF devices: only representors.
        dev.vfs().map_err(dev_err(pf, "list VFs"))?
    };

    // ---- Unbind every bound VF, remembering its driver. One bound for all of them.
    let unbind_by = Instant::now() + t.bind;
    for vf in &vfs {
        let driver = vf.driver().map_err(dev_err(pf, "read VF driver"))?;
        st.record(vf, driver.clone());
        if let Some(d) = driver {
            save(&st, root, pf)?;
            info!(pf = %pf, step = "unbind", vf = vf.index, addr = %vf.addr, driver = %d, "unbinding VF");
            sysfs::unbind(root, &dev.bus, &d, &vf.addr).map_err(dev_err(pf, "unbind VF"))?;
            // Unbinding is synchronous on sysfs; the bounded wait only guards odd buses.
            t.budget
                .wait(
                    &format!("{} to leave {d}", vf.addr),
                    left(unbind_by),
                    || {
                        Ok(if vf.driver()?.is_none() {
                            Ok(())
                        } else {
                            Err(0)
                        })
                    },
                )
                .map_err(waited(pf, "unbind VF", HINT_DRIVER))?;
            r.changed = true;
        }
    }
    save(&st, root, pf)?;

    // ---- eswitch.
    let mut reps: Vec<Representor> = vec![];
    if switchdev {
        // Re-read: changing the VF count can drop the eswitch back to legacy.
        let now = net
            .eswitch_mode(&h)
            .map_err(dev_err(pf, "devlink eswitch show"))?;
        if now != EswitchMode::Switchdev {
            info!(pf = %pf, step = "eswitch", device = %h, from = %now, "setting eswitch mode switchdev");
            // Not started without time for it: a unit killed mid-change leaves the NIC between
            // modes. While it runs (mlx5: up to ~90 s with 60 VFs) the unit's timeout extends.
            t.budget.extend();
            if let Some(l) = t.budget.left().filter(|l| *l < MIN_FOR_ESWITCH) {
                return Err(StageError::Other {
                    pf: pf.to_string(),
                    msg: format!("eswitch switchdev not started: only {} s left before the unit's start timeout and setup-timeout-max allows no more; raise setup-timeout-max (vflag.conf) and restart vflag@{}", l.as_secs(), pf.unit_instance()),
                });
            }
            t.budget
                .status(&format!("switching eSwitch to switchdev ({want} VFs)"));
            t.budget
                .during(|| net.set_eswitch_mode(&h, EswitchMode::Switchdev))
                .map_err(dev_err(pf, "devlink eswitch set"))?;
            r.changed = true;
        }
        if want > 0 {
            let mut shown = None;
            let (found, src) = t
                .budget
                .wait(
                    &format!("{want} representors of {pf}"),
                    t.representors,
                    || {
                        let (reps, src) = net.representors(&dev)?;
                        let k = (0..want)
                            .filter(|i| reps.iter().any(|r| r.vf == *i))
                            .count() as u64;
                        if shown != Some(k) {
                            t.budget.status(&format!("representors {k}/{want}"));
                            shown = Some(k);
                        }
                        Ok(if k == want as u64 {
                            Ok((reps, src))
                        } else {
                            Err(k)
                        })
                    },
                )
                .map_err(waited(pf, "representors", HINT_REPS))?;
            info!(pf = %pf, step = "representors", count = found.len(), source = ?src, "found representors");
            reps = found;
        }
    }

    // ---- hw-tc-offload and channels on the PF and every representor; collect problems, touch
    // every port. All ports are read with one dump per setting, only the changes are sent (at
    // most the floor's two requests per port), and what was sent is read back the same way.
    let mut problems = vec![];
    let pf_index = pf_ifindex_after_mode_change(net, &dev, pf_index, t, &mut r)?;
    let mut ports = vec![(pf_index, pf.to_string(), lag.pf_channels)];
    ports.extend(reps.iter().map(|rep| {
        (
            rep.ifindex,
            format!("{} (VF {})", rep.name, rep.vf),
            lag.representor_channels,
        )
    }));
    let mut offload_all = true;
    let mut sent = vec![];
    let tune = ports.iter().any(|(_, _, ch)| ch.is_some());
    let before = PortTables::read(net, true, tune);
    for (idx, label, channels) in &ports {
        let now = before.offload(net, *idx);
        match now.and_then(|f| offload(net, *idx, f)) {
            Ok(Offload::On) => {}
            Ok(Offload::Asked) => {
                r.changed = true;
                sent.push((*idx, label, Sent::Offload));
            }
            Ok(Offload::Fixed) => {
                offload_all = false;
                let msg = format!("hw-tc-offload is off on {label} and cannot be changed [fixed]");
                if switchdev {
                    problems.push(msg);
                } else {
                    r.warn(msg);
                }
            }
            Err(e) => {
                offload_all = false;
                problems.push(format!("hw-tc-offload on {label}: {e}"));
            }
        }
        if let Some(n) = channels {
            let now = before.channels(net, *idx);
            match tune_channels(net, *idx, now, *n) {
                Ok(out) => {
                    if let Some(w) = out.warning {
                        r.warn(format!("{label}: {w}"));
                    }
                    if let Some(target) = out.sent {
                        r.changed = true;
                        sent.push((*idx, label, Sent::Channels(target)));
                    }
                }
                Err(e) => problems.push(format!("channels on {label}: {e}")),
            }
        }
    }
    if !sent.is_empty() {
        let sent_offload = sent.iter().any(|(_, _, w)| matches!(w, Sent::Offload));
        let sent_channels = sent.iter().any(|(_, _, w)| matches!(w, Sent::Channels(_)));
        let after = PortTables::read(net, sent_offload, sent_channels);
        for (idx, label, what) in sent {
            match what {
                Sent::Offload => match after.offload(net, idx) {
                    Ok(f) if f.active => {}
                    Ok(f) => {
                        offload_all = false;
                        problems.push(format!("hw-tc-offload on {label}: asked for on, the device kept it off (wanted={})", f.wanted));
                    }
                    Err(e) => {
                        offload_all = false;
                        problems.push(format!("hw-tc-offload on {label}: {e}"));
                    }
                },
                Sent::Channels(n) => match after.channels(net, idx) {
                    Ok(c) if c.combined == Some(n) => {}
                    Ok(c) => problems.push(format!(
                        "channels on {label}: combined channels are {:?} after setting {n}",
                        c.combined
                    )),
                    Err(e) => problems.push(format!("channels on {label}: {e}")),
                },
            }
        }
    }

    // ---- Verify the end state.
    match dev.numvfs() {
        Ok(Some(n)) if n == want => {}
        other => problems.push(format!("sriov_numvfs is {other:?}, expected {want}")),
    }
    for vf in dev.vfs().map_err(dev_err(pf, "list VFs"))? {
        if let Ok(Some(d)) = vf.driver() {
            problems.push(format!(
                "VF {} ({}) is bound to {d} again",
                vf.index, vf.addr
            ));
        }
    }
    if switchdev {
        let m = net
            .eswitch_mode(&h)
            .map_err(dev_err(pf, "devlink eswitch show"))?;
        if m != EswitchMode::Switchdev {
            problems.push(format!("eswitch is {m}, expected switchdev"));
        }
        r.eswitch = Some(m.to_string());
        r.representors = Some(reps.len());
    } else {
        r.eswitch = Some("legacy".into());
    }
    r.offload = Some(offload_all);
    if !problems.is_empty() {
        return Err(StageError::Incomplete {
            pf: pf.to_string(),
            problems,
        });
    }
    st.setup_done = true;
    save(&st, root, pf)?;
    info!(pf = %pf, step = "done", status = %r.status(), "set-up complete");
    Ok(r)
}

/// Read-only look at representors and offload, for the report of a run that changes nothing.
fn observe(net: &mut dyn Net, dev: &Pf, switchdev: bool, r: &mut Report) {
    let mut idx = vec![];
    if let Ok(i) = dev.ifindex() {
        idx.push(i);
    }
    if switchdev {
        if let Ok((reps, _)) = net.representors(dev) {
            r.representors = Some(reps.len());
            idx.extend(reps.iter().map(|x| x.ifindex));
        }
    }
    let tables = PortTables::read(net, true, false);
    let on = idx
        .iter()
        .map(|i| tables.offload(net, *i).map(|f| f.active))
        .collect::<device::Result<Vec<bool>>>();
    r.offload = on.ok().map(|v| !v.is_empty() && v.iter().all(|x| *x));
}

/// The PF's ifindex after the eswitch change. mlx5 may re-register the PF netdev as the uplink
/// representor (new ifindex, and udev may rename it, e.g. `ens3f0` -> `ens3f0np0`): keep
/// using the old ifindex while it exists, else find the uplink under the PF's device. Either
/// way the PF must end up with its configured name — vflag's udev rule gives it back
/// (see `naming`) — or the bond config no longer finds it: wait for that (bounded) and fail
/// loudly, before any bond step, if it does not happen.
fn pf_ifindex_after_mode_change(
    net: &mut dyn Net,
    dev: &Pf,
    before: u32,
    t: &Timeouts,
    r: &mut Report,
) -> Result<u32, StageError> {
    let pf = &dev.name;
    let idx = match net.link(before) {
        Ok(_) => before,
        Err(DevError::Kernel { errno: 19, .. }) => {
            let (idx, name) = t
                .budget
                .wait(
                    &format!("the uplink netdev of {}", dev.handle()),
                    t.representors,
                    || Ok(dev.uplink()?.ok_or(0)),
                )
                .map_err(waited(pf, "find PF netdev after eswitch change", HINT_REPS))?;
            r.warn(format!(
                "{pf} was re-created by the eswitch change (ifindex {before} -> {idx}, now {name})"
            ));
            idx
        }
        Err(e) => return Err(dev_err(pf, "rtnetlink")(e)),
    };
    let named =
        t.budget
            .wait::<_, DevError>(&format!("{pf} to keep its name"), t.representors, || {
                let l = net.link(idx)?;
                Ok(if l.name == pf.as_str() {
                    Ok(())
                } else {
                    Err(0)
                })
            });
    if named.is_err() {
        let now = net
            .link(idx)
            .map(|l| l.name)
            .unwrap_or_else(|e| format!("? ({e})"));
        return Err(StageError::Incomplete {
            pf: pf.to_string(),
            problems: vec![format!(
                "the eswitch change renamed {pf} to {now}; a bond that names {pf} would not find it. Check that 79-vflag-names.rules is installed (udevadm test /sys/class/net/{now})"
            )],
        });
    }
    Ok(idx)
}

fn save(st: &State, root: &Root, pf: &IfName) -> Result<(), StageError> {
    st.save(root, pf).map_err(|e| StageError::Other {
        pf: pf.to_string(),
        msg: format!("cannot write {}: {e}", state_path(root, pf).display()),
    })
}

/// hw-tc-offload and channels of every netdev, read with one dump each. A device a dump left
/// out (too new for it, or a dump the kernel refused) is asked on its own; for channels that
/// is also how a device without channel settings gets its EOPNOTSUPP.
struct PortTables {
    offload: HashMap<u32, Feature>,
    channels: HashMap<u32, Channels>,
}

impl PortTables {
    /// Dumps what is asked for (`offload`, `channels`); the other table stays empty.
    fn read(net: &mut dyn Net, offload: bool, channels: bool) -> Self {
        fn or_empty<T>(what: &str, r: device::Result<HashMap<u32, T>>) -> HashMap<u32, T> {
            r.unwrap_or_else(|e| {
                // Correct either way, but one request per port again: say so.
                info!("ethtool {what} dump failed ({e}); asking each device on its own");
                HashMap::new()
            })
        }
        PortTables {
            offload: match offload {
                true => or_empty("features", net.feature_all(HW_TC_OFFLOAD)),
                false => HashMap::new(),
            },
            channels: match channels {
                true => or_empty("channels", net.channels_all()),
                false => HashMap::new(),
            },
        }
    }

    fn offload(&self, net: &mut dyn Net, idx: u32) -> device::Result<Feature> {
        match self.offload.get(&idx) {
            Some(f) => Ok(*f),
            None => net.feature(idx, HW_TC_OFFLOAD),
        }
    }

    fn channels(&self, net: &mut dyn Net, idx: u32) -> device::Result<Channels> {
        match self.channels.get(&idx) {
            Some(c) => Ok(*c),
            None => net.channels(idx),
        }
    }
}

/// A change requested from a port, to read back.
enum Sent {
    Offload,
    Channels(u32),
}

enum Offload {
    On,
    /// Off and changeable: asked for on.
    Asked,
    /// Off and `[fixed]`.
    Fixed,
}

/// Turn hw-tc-offload on unless it is (or cannot be).
fn offload(net: &mut dyn Net, idx: u32, now: Feature) -> device::Result<Offload> {
    if now.active {
        return Ok(Offload::On);
    }
    if !now.changeable {
        return Ok(Offload::Fixed);
    }
    net.set_feature(idx, HW_TC_OFFLOAD, true)?;
    Ok(Offload::Asked)
}

struct ChannelOutcome {
    /// The combined count asked for, if a change was sent.
    sent: Option<u32>,
    warning: Option<String>,
}

/// Set combined channels to `want`, clamped to the device maximum (with a warning).
fn tune_channels(
    net: &mut dyn Net,
    idx: u32,
    now: device::Result<Channels>,
    want: u32,
) -> device::Result<ChannelOutcome> {
    let ch = match now {
        Err(DevError::Kernel { errno: 95, .. }) => {
            return Ok(ChannelOutcome {
                sent: None,
                warning: Some("the driver does not support channel settings; left as is".into()),
            })
        }
        r => r?,
    };
    let Some(max) = ch.combined_max else {
        return Ok(ChannelOutcome {
            sent: None,
            warning: Some(format!(
                "no combined channels on this device; {want} not applied"
            )),
        });
    };
    let (target, warning) = if want > max {
        (
            max,
            Some(format!(
                "{want} combined channels requested, the maximum is {max}: using {max}"
            )),
        )
    } else {
        (want, None)
    };
    if ch.combined == Some(target) {
        return Ok(ChannelOutcome {
            sent: None,
            warning,
        });
    }
    net.set_combined(idx, target)?;
    Ok(ChannelOutcome {
        sent: Some(target),
        warning,
    })
}

/// Why a bond is (not yet) right for VF-LAG.
enum BondCheck {
    Valid {
        bond: String,
        mode: String,
    },
    /// May still change (NetworkManager is still enslaving): wait and look again.
    NotYet(String),
    /// Will not fix itself (wrong mode, not a bond): give up now.
    Invalid(String),
}

fn check_bond(
    root: &Root,
    lag: &Lag,
    dev: &Pf,
    net: &mut dyn Net,
) -> Result<BondCheck, StageError> {
    let Some(bond) = master_of(dev, net)? else {
        return Ok(BondCheck::NotYet(format!(
            "{} is not enslaved to a bond",
            dev.name
        )));
    };
    let mode = match sysfs::bond_mode(root, &bond).map_err(dev_err(&dev.name, "read bond mode"))? {
        Some(m) => m,
        None => {
            return Ok(BondCheck::Invalid(format!(
                "{} is enslaved to {bond}, which is not a bond",
                dev.name
            )))
        }
    };
    if !LAG_BOND_MODES.contains(&mode.as_str()) {
        return Ok(BondCheck::Invalid(format!(
            "{bond} is in mode {mode}; VF-LAG needs one of {}",
            LAG_BOND_MODES.join(", ")
        )));
    }
    let mut slaves =
        sysfs::bond_slaves(root, &bond).map_err(dev_err(&dev.name, "read bond slaves"))?;
    slaves.sort();
    let mut pfs: Vec<String> = lag.pfs.iter().map(|p| p.to_string()).collect();
    pfs.sort();
    let extra: Vec<&String> = slaves.iter().filter(|s| !pfs.contains(s)).collect();
    if !extra.is_empty() {
        return Ok(BondCheck::Invalid(format!(
            "{bond} also has {}: VF-LAG needs exactly the LAG's PFs ({}) in the bond",
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            pfs.join(", ")
        )));
    }
    let missing: Vec<&String> = pfs.iter().filter(|p| !slaves.contains(p)).collect();
    if !missing.is_empty() {
        return Ok(BondCheck::NotYet(format!(
            "{bond} does not contain {} yet",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(BondCheck::Valid { bond, mode })
}

/// What can be seen of a device's LAG.
#[derive(Debug, Clone)]
enum LagSeen {
    Active(String),
    /// Not active yet; `authoritative`: debugfs says so (vs. no kernel log line yet).
    Pending {
        authoritative: bool,
        what: String,
    },
    Failed(String),
    Unobservable,
}

/// Device names (PCI addresses on PCI) of this PF and the LAG's other PFs (the kernel reports a
/// LAG on one of them). mlx5 names its debugfs directory after the device name, on any bus.
fn lag_pcis(root: &Root, lag: &Lag, dev: &Pf) -> Vec<String> {
    let mut v: Vec<String> = vec![dev.dev_name.clone()];
    for other in lag.pfs.iter().filter(|p| **p != dev.name) {
        if let Ok(o) = Pf::open(root, other) {
            if !v.contains(&o.dev_name) {
                v.push(o.dev_name);
            }
        }
    }
    v
}

fn observe_lag(root: &Root, dev: &Pf, pcis: &[String]) -> LagSeen {
    for pci in pcis {
        match kernlog::read_debugfs_lag(root, pci) {
            Ok(Some(d)) if d.active => return LagSeen::Active("active".into()),
            Ok(Some(_)) => {
                return LagSeen::Pending {
                    authoritative: true,
                    what: format!("{pci} lag/state: disabled"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(pf = %dev.name, "mlx5 debugfs: {e}"),
        }
    }
    // Only mlx5 logs LAG lines; for other vendors silence means nothing.
    if !matches!(dev.pci_ids(), Ok(Some((MLX5_VENDOR, _)))) {
        return LagSeen::Unobservable;
    }
    let report = match kernlog::kmsg_lag_report(root) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(pf = %dev.name, "kernel log not readable: {e}");
            return LagSeen::Unobservable;
        }
    };
    match pcis.iter().find_map(|p| report.for_pf(p)) {
        Some(d) => match &d.state {
            kernlog::LagState::Active { .. } => LagSeen::Active("active (kernel log)".into()),
            kernlog::LagState::Failed { reason, .. } => {
                LagSeen::Failed(format!("{reason:?} ({})", reason.hint()))
            }
        },
        None => LagSeen::Pending {
            authoritative: false,
            what: "no LAG line in the kernel log".into(),
        },
    }
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

/// The late stage for one PF.
pub fn rebind(root: &Root, lag: &Lag, pf: &IfName) -> Result<Report, StageError> {
    let mut net = Kernel::open().map_err(dev_err(pf, "open netlink"))?;
    // No extension of its own: the units of `before` are never held back beyond its timeout.
    let t = Timeouts {
        budget: Budget::from_env(root, Duration::ZERO),
        ..Timeouts::default()
    };
    rebind_with(root, lag, pf, &mut net, &t)
}

pub fn rebind_with(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    net: &mut dyn Net,
    t: &Timeouts,
) -> Result<Report, StageError> {
    let dev = open_pf(root, lag, pf)?;
    let lag = &paired(root, lag, pf)?;
    // Binding VFs of a PF whose early stage did not complete would hide that VF-LAG is down.
    if !State::load(root, pf, &dev.handle()).setup_done {
        return Err(StageError::NotBound {
            pf: pf.to_string(),
            reason: format!(
                "the early stage did not complete for {pf} this boot (see `systemctl status vflag@{}`); VF-LAG is degraded",
                pf.unit_instance()
            ),
        });
    }
    // The waits below only read; the lock is taken for the writes, so the two PFs' late
    // stages wait for their bond in parallel and never add up their bounds.
    let mut r = Report {
        pf: pf.to_string(),
        stage: "rebind",
        ..Report::default()
    };
    let not_bound = |reason: String| StageError::NotBound {
        pf: pf.to_string(),
        reason,
    };
    let start = Instant::now();
    // lag-timeout, or less when the unit ends sooner (vflag-hotplug@ runs this after the set-up,
    // in the same start timeout): the binds after the wait keep BIND_RESERVE.
    let deadline = match t.budget.left() {
        Some(l) => lag.lag_timeout.min(l.saturating_sub(BIND_RESERVE)),
        None => lag.lag_timeout,
    };

    // Plain SR-IOV on one port: no bond and no LAG to wait for.
    if lag.eswitch == ConfEswitch::Legacy && lag.pfs.len() == 1 {
        r.bond = Some("none (legacy, single port)".into());
        return bind_back(root, pf, &dev, t, r);
    }

    // ---- The bond: wait (bounded) while it is still being assembled.
    let (bond, mode) = loop {
        match check_bond(root, lag, &dev, net)? {
            BondCheck::Valid { bond, mode } => break (bond, mode),
            BondCheck::Invalid(why) => return Err(not_bound(why)),
            BondCheck::NotYet(why) if start.elapsed() >= deadline => {
                return Err(not_bound(format!(
                    "{why} after {:.0} s",
                    start.elapsed().as_secs_f64()
                )))
            }
            BondCheck::NotYet(_) => std::thread::sleep(sysfs::POLL_INTERVAL),
        }
    };
    info!(pf = %pf, step = "bond", bond = %bond, mode = %mode, "bond is valid for VF-LAG");
    r.bond = Some(format!("{bond} {mode}"));

    // ---- LAG activation, where the driver shows it: mlx5 debugfs (authoritative), else the
    // kernel log (a logged failure is final; silence until the bound only warns). A legacy
    // eSwitch has no VF-LAG to wait for.
    if lag.eswitch == ConfEswitch::Legacy {
        r.lag = Some("none (legacy eSwitch)".into());
        return bind_back(root, pf, &dev, t, r);
    }
    let pcis = lag_pcis(root, lag, &dev);
    let lag_left = deadline.saturating_sub(start.elapsed());
    t.budget
        .status(&format!("waiting for the LAG of {bond} to become active"));
    let mut last = LagSeen::Unobservable;
    let seen = wait_for("LAG activation", lag_left, || {
        last = observe_lag(root, &dev, &pcis);
        Ok(match &last {
            LagSeen::Pending { .. } => None,
            other => Some(other.clone()),
        })
    });
    r.lag = Some(match seen {
        Ok(LagSeen::Active(how)) => how,
        Ok(LagSeen::Unobservable) => "not observable".to_string(),
        Ok(LagSeen::Failed(why)) => {
            return Err(not_bound(format!("the kernel could not activate the LAG of {bond}: {why}")))
        }
        Ok(LagSeen::Pending { .. }) => unreachable!("pending is not an answer"),
        Err(DevError::Timeout { .. }) => match last {
            LagSeen::Pending { authoritative: true, what } => {
                return Err(not_bound(format!(
                    "the LAG of {bond} did not become active within {:.0} s ({what}); binding now would leave VF-LAG inactive",
                    deadline.as_secs_f64()
                )))
            }
            LagSeen::Pending { what, .. } => {
                r.warn(format!(
                    "LAG activation not seen within {:.0} s ({what}); binding anyway",
                    deadline.as_secs_f64()
                ));
                "not seen".to_string()
            }
            _ => "not observable".to_string(),
        },
        Err(e) => return Err(dev_err(pf, "wait for LAG")(e)),
    });
    info!(pf = %pf, step = "lag", state = r.lag.as_deref().unwrap_or(""), "LAG state");
    bind_back(root, pf, &dev, t, r)
}

/// Restore autoprobe, then bind each VF back to the driver it had (under the NIC lock).
fn bind_back(
    root: &Root,
    pf: &IfName,
    dev: &Pf,
    t: &Timeouts,
    mut r: Report,
) -> Result<Report, StageError> {
    let _lock = lock_nic_within(root, dev, t.lock, &t.budget)?;
    let h = dev.handle();
    let st = State::load(root, pf, &h);
    let autoprobe = dev
        .autoprobe()
        .map_err(dev_err(pf, "read sriov_drivers_autoprobe"))?;
    match (st.autoprobe_before, autoprobe) {
        (Some(before), Some(now)) if before != now => {
            dev.set_autoprobe(before)
                .map_err(dev_err(pf, "restore sriov_drivers_autoprobe"))?;
            r.changed = true;
        }
        (None, Some(false)) => {
            r.warn("sriov_drivers_autoprobe is 0 and no record says what it was; left as is".into())
        }
        _ => {}
    }
    let vfs = dev.vfs().map_err(dev_err(pf, "list VFs"))?;
    r.vfs = dev.numvfs().ok().flatten().unwrap_or(vfs.len() as u32);
    t.budget.status(&format!("binding {} VFs back", vfs.len()));
    let mut bound = 0;
    let mut problems = vec![];
    let bind_by = Instant::now() + t.bind; // one bound for all VFs, not one per VF
    for vf in &vfs {
        if vf
            .driver()
            .map_err(dev_err(pf, "read VF driver"))?
            .is_some()
        {
            bound += 1;
            continue;
        }
        let recorded = st
            .vfs
            .iter()
            .find(|x| x.index == vf.index && x.addr == vf.addr)
            .and_then(|x| x.driver.clone());
        let target = match recorded {
            // The record is a file under /run: a driver name from it becomes a /sys path only
            // if it is one plain path component.
            Some(d) if !valid_driver_name(&d) => {
                problems.push(format!(
                    "VF {} ({}): {:?} in {} is not a valid driver name; not binding it (delete the file and restart vflag@{} to record it again)",
                    vf.index,
                    vf.addr,
                    d,
                    state_path(root, pf).display(),
                    pf.unit_instance()
                ));
                continue;
            }
            Some(d) => Some(d),
            None => sysfs::driver_override(&vf.dir).map_err(dev_err(pf, "read driver_override"))?,
        };
        info!(pf = %pf, step = "bind", vf = vf.index, addr = %vf.addr, driver = target.as_deref().unwrap_or("(bus match)"), "binding VF");
        let res = match &target {
            Some(d) => sysfs::bind(root, &dev.bus, d, &vf.addr),
            None => sysfs::probe(root, &dev.bus, &vf.addr),
        };
        if let Err(e) = res {
            problems.push(format!("VF {} ({}): {e}", vf.index, vf.addr));
            continue;
        }
        match t.budget.wait::<_, DevError>(
            &format!("a driver on VF {}", vf.addr),
            left(bind_by),
            || Ok(vf.driver()?.ok_or(0)),
        ) {
            Ok(d) if target.as_ref().is_some_and(|t| *t != d) => {
                problems.push(format!(
                    "VF {} ({}) bound to {d}, expected {}",
                    vf.index,
                    vf.addr,
                    target.as_deref().unwrap_or("")
                ));
            }
            Ok(_) => {
                bound += 1;
                r.changed = true;
            }
            Err(e) => problems.push(format!("VF {} ({}): {e}", vf.index, vf.addr)),
        }
    }
    if vfs.is_empty() && r.vfs > 0 {
        // netdevsim: VFs exist only as representors, there is no device to bind.
        r.warn(format!(
            "{} has {} VFs but no VF devices on bus {}: nothing to bind",
            dev.name, r.vfs, dev.bus
        ));
    } else {
        r.bound = Some(bound);
    }
    if !problems.is_empty() {
        return Err(StageError::Incomplete {
            pf: pf.to_string(),
            problems,
        });
    }
    info!(pf = %pf, step = "done", status = %r.status(), "VFs bound");
    Ok(r)
}

/// Stage logic against a fake sysfs tree and a recording fake netlink. These prove vflag's own
/// decisions (guards, order, idempotence, what is written where); they prove nothing about
/// kernel behaviour — that is the VM test bed's job.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkStack;
    use crate::device::devlink::ParamValue;
    use crate::device::ethtool::{Channels, Feature};
    use crate::device::repr::Source;
    use crate::device::rtnl::Link;
    use crate::device::sysfs::testtree::Tree;
    use crate::device::Result as DevResult;
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn n(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }

    fn lag(vfs: u32) -> Lag {
        Lag {
            name: "bond0".into(),
            source: "/etc/vflag/vflag.conf".into(),
            pfs: vec![n("ens3f0"), n("ens3f1")],
            vfs,
            pf_channels: Some(63),
            representor_channels: Some(18),
            eswitch: ConfEswitch::Switchdev,
            network_stack: NetworkStack::Auto,
            before: vec![],
            device_timeout: Duration::from_secs(1),
            lag_timeout: Duration::from_millis(400),
            setup_timeout_max: Duration::from_secs(300),
            flow_steering_mode: None,
            lag_port_select_mode: None,
            representor_names: false,
        }
    }

    fn quick() -> Timeouts {
        Timeouts {
            vfs: Duration::from_secs(5),
            representors: Duration::from_secs(2),
            lock: Duration::from_millis(300),
            bind: Duration::from_secs(5),
            budget: Budget::unlimited(),
        }
    }

    /// Recording fake of the netlink side. Representors exist only in switchdev mode.
    struct FakeNet {
        mode: EswitchMode,
        reps: Vec<Representor>,
        features: HashMap<u32, Feature>,
        channels: HashMap<u32, (u32, u32)>,
        slave: bool,
        calls: Vec<String>,
        /// ifindexes rtnetlink no longer knows (ENODEV).
        gone: Vec<u32>,
        /// Runs when switchdev is set (to change the fake tree like a driver would).
        on_switchdev: Option<Box<dyn FnMut()>>,
        /// devlink params this fake kernel does not have (EINVAL, as devlink answers).
        no_params: bool,
        /// Interface names by ifindex (rtnetlink's view); others are `if<N>`.
        names: HashMap<u32, String>,
        /// ifindexes the ethtool dumps leave out (created after them, say).
        undumped: Vec<u32>,
        /// ifindexes whose driver accepts hw-tc-offload on and keeps it off.
        keeps_offload_off: Vec<u32>,
    }

    impl FakeNet {
        fn new(nreps: u32) -> Self {
            let mut f = FakeNet {
                mode: EswitchMode::Legacy,
                reps: (0..nreps)
                    .map(|i| Representor {
                        vf: i,
                        ifindex: 50 + i,
                        name: format!("eth{i}"),
                        controller: None,
                    })
                    .collect(),
                features: HashMap::new(),
                channels: HashMap::new(),
                slave: false,
                calls: vec![],
                gone: vec![],
                on_switchdev: None,
                no_params: false,
                // The PFs of `nic()`.
                names: HashMap::from([(4, "ens3f0".to_string()), (5, "ens3f1".to_string())]),
                undumped: vec![],
                keeps_offload_off: vec![],
            };
            for idx in [4, 5].into_iter().chain(50..50 + nreps) {
                f.features.insert(
                    idx,
                    Feature {
                        active: false,
                        wanted: false,
                        changeable: true,
                    },
                );
                f.channels.insert(idx, (8, if idx < 50 { 63 } else { 16 }));
            }
            f
        }
        fn writes(&self) -> Vec<&String> {
            self.calls.iter().filter(|c| c.starts_with("set")).collect()
        }
    }

    impl Net for FakeNet {
        fn link(&mut self, ifindex: u32) -> DevResult<Link> {
            if self.gone.contains(&ifindex) {
                return Err(DevError::Kernel {
                    op: "get link".into(),
                    errno: 19,
                    extack: None,
                });
            }
            Ok(Link {
                index: ifindex,
                name: self
                    .names
                    .get(&ifindex)
                    .cloned()
                    .unwrap_or(format!("if{ifindex}")),
                flags: if self.slave { 0x801 } else { 0x1 },
                master: None,
                phys_port_name: None,
                phys_switch_id: None,
            })
        }
        fn eswitch_mode(&mut self, _h: &Handle) -> DevResult<EswitchMode> {
            Ok(self.mode)
        }
        fn set_eswitch_mode(&mut self, h: &Handle, mode: EswitchMode) -> DevResult<()> {
            self.calls.push(format!("set eswitch {h} {mode}"));
            self.mode = mode;
            if let Some(f) = self.on_switchdev.as_mut() {
                f();
                self.gone.push(4);
            }
            Ok(())
        }
        fn set_param(
            &mut self,
            h: &Handle,
            name: &str,
            value: &str,
        ) -> DevResult<Option<ParamValue>> {
            if self.no_params {
                return Err(DevError::Kernel {
                    op: format!("devlink dev param show {h} name {name}"),
                    errno: 22,
                    extack: Some("Requested parameter does not exist".into()),
                });
            }
            self.calls
                .push(format!("set param {h} {name}={value} in {}", self.mode));
            Ok(Some(ParamValue::Str("dmfs".into())))
        }
        fn representors(&mut self, _pf: &Pf) -> DevResult<(Vec<Representor>, Source)> {
            Ok(match self.mode {
                EswitchMode::Switchdev => (self.reps.clone(), Source::Devlink),
                _ => (vec![], Source::Devlink),
            })
        }
        fn feature(&mut self, ifindex: u32, _name: &str) -> DevResult<Feature> {
            self.calls.push(format!("get offload #{ifindex}"));
            Ok(self.features[&ifindex])
        }
        fn feature_all(&mut self, _name: &str) -> DevResult<HashMap<u32, Feature>> {
            self.calls.push("dump offload".into());
            let mut all = self.features.clone();
            all.retain(|i, _| !self.undumped.contains(i));
            Ok(all)
        }
        fn set_feature(&mut self, ifindex: u32, _name: &str, on: bool) -> DevResult<()> {
            self.calls.push(format!("set offload #{ifindex} {on}"));
            let keeps_off = self.keeps_offload_off.contains(&ifindex);
            let f = self.features.get_mut(&ifindex).unwrap();
            if f.changeable {
                f.wanted = on;
                f.active = on && !keeps_off;
            }
            Ok(())
        }
        fn channels(&mut self, ifindex: u32) -> DevResult<Channels> {
            self.calls.push(format!("get channels #{ifindex}"));
            let (c, m) = self.channels[&ifindex];
            Ok(Channels {
                combined: Some(c),
                combined_max: Some(m),
            })
        }
        fn channels_all(&mut self) -> DevResult<HashMap<u32, Channels>> {
            self.calls.push("dump channels".into());
            Ok(self
                .channels
                .iter()
                .filter(|(i, _)| !self.undumped.contains(i))
                .map(|(i, (c, m))| {
                    (
                        *i,
                        Channels {
                            combined: Some(*c),
                            combined_max: Some(*m),
                        },
                    )
                })
                .collect())
        }
        fn set_combined(&mut self, ifindex: u32, n: u32) -> DevResult<()> {
            self.calls.push(format!("set channels #{ifindex} {n}"));
            self.channels.get_mut(&ifindex).unwrap().0 = n;
            Ok(())
        }
    }

    /// A fake kernel thread acting on the fake tree like sysfs does: `sriov_numvfs` creates or
    /// removes VFs (bound to `driver` when autoprobe is 1), `unbind`/`bind`/`drivers_probe`
    /// move `driver` links.
    struct FakeKernel {
        stop: Arc<AtomicBool>,
        h: Option<std::thread::JoinHandle<()>>,
    }

    impl FakeKernel {
        fn spawn(root: &Path, pf_devs: &[String], driver: &str) -> Self {
            let stop = Arc::new(AtomicBool::new(false));
            let (root, devs, driver, s) = (
                root.to_path_buf(),
                pf_devs.to_vec(),
                driver.to_string(),
                stop.clone(),
            );
            let h = std::thread::spawn(move || {
                let vf_dir = |dev: &str, i: u32| {
                    root.join(format!(
                        "{}.{}",
                        dev.rsplit_once('.').unwrap().0,
                        2 + i + 16 * dev.ends_with(".1") as u32
                    ))
                };
                let drv = root.join("sys/bus/pci/drivers");
                let link_driver = |vf: &Path, d: &str| {
                    let _ = fs::remove_file(vf.join("driver"));
                    std::os::unix::fs::symlink(drv.join(d), vf.join("driver")).unwrap();
                };
                while !s.load(Ordering::Relaxed) {
                    for dev in &devs {
                        let d = root.join(dev);
                        let want: u32 = fs::read_to_string(d.join("sriov_numvfs"))
                            .unwrap()
                            .trim()
                            .parse()
                            .unwrap_or(0);
                        let have = (0..)
                            .take_while(|i| d.join(format!("virtfn{i}")).exists())
                            .count() as u32;
                        if want == 0 && have > 0 {
                            for i in 0..have {
                                let _ = fs::remove_file(d.join(format!("virtfn{i}")));
                                let _ = fs::remove_dir_all(vf_dir(dev, i));
                            }
                        } else if want > 0 && have == 0 {
                            let probe = fs::read_to_string(d.join("sriov_drivers_autoprobe"))
                                .map(|s| s.trim() == "1")
                                .unwrap_or(true);
                            for i in 0..want {
                                let vf = vf_dir(dev, i);
                                fs::create_dir_all(&vf).unwrap();
                                std::os::unix::fs::symlink(&vf, d.join(format!("virtfn{i}")))
                                    .unwrap();
                                if probe {
                                    link_driver(&vf, &driver);
                                }
                            }
                        }
                    }
                    let pci = root.join("sys/devices/pci0000:00");
                    for entry in fs::read_dir(&drv).unwrap().flatten() {
                        for (file, bind) in [("unbind", false), ("bind", true)] {
                            let f = entry.path().join(file);
                            let addr = fs::read_to_string(&f).unwrap_or_default();
                            if !addr.is_empty() {
                                let vf = pci.join(addr.trim());
                                if bind {
                                    link_driver(&vf, &entry.file_name().to_string_lossy());
                                } else {
                                    let _ = fs::remove_file(vf.join("driver"));
                                }
                                fs::write(&f, "").unwrap();
                            }
                        }
                    }
                    let probe = root.join("sys/bus/pci/drivers_probe");
                    let addr = fs::read_to_string(&probe).unwrap_or_default();
                    if !addr.is_empty() {
                        link_driver(&pci.join(addr.trim()), &driver);
                        fs::write(&probe, "").unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            FakeKernel { stop, h: Some(h) }
        }
    }

    impl Drop for FakeKernel {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(h) = self.h.take() {
                let _ = h.join();
            }
        }
    }

    /// Two ports of one NIC (0000:37:00.0/.1), `numvfs` VFs each bound to `drv`.
    fn nic(numvfs: u32, drv: Option<&str>) -> (Tree, Vec<String>) {
        let t = Tree::new();
        let a = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), numvfs, drv);
        let b = t.pci_pf("ens3f1", "0000:37:00.1", 5, Some(8), numvfs, drv);
        t.driver("pci", "mlx5_core");
        (t, vec![a, b])
    }

    #[test]
    fn fresh_setup_does_every_step_once_in_order() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        l.flow_steering_mode = Some("smfs".into());
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs, switchdev, offload on, 2 representors");
        assert_eq!(t.read(&format!("{}/sriov_numvfs", devs[0])), "2");
        assert_eq!(
            t.read(&format!("{}/sriov_drivers_autoprobe", devs[0])),
            "0",
            "autoprobe off before creating"
        );
        // VFs were created unbound: nothing to unbind.
        assert_eq!(t.read("sys/bus/pci/drivers/mlx5_core/unbind"), "");
        assert_eq!(
            net.writes(),
            [
                "set param pci/0000:37:00.0 flow_steering_mode=smfs in legacy",
                "set eswitch pci/0000:37:00.0 switchdev",
                "set offload #4 true",
                "set channels #4 63",
                "set offload #50 true",
                "set channels #50 16",
                "set offload #51 true",
                "set channels #51 16",
            ]
        );
        // Ports are read with dumps (before and after the changes), never one by one.
        let reads = |calls: &[String]| -> Vec<String> {
            calls
                .iter()
                .filter(|c| c.starts_with("get") || c.starts_with("dump"))
                .cloned()
                .collect()
        };
        assert_eq!(
            reads(&net.calls),
            [
                "dump offload",
                "dump channels",
                "dump offload",
                "dump channels"
            ]
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("18 combined channels requested, the maximum is 16")),
            "{:?}",
            r.warnings
        );
        let st = State::load(
            &t.root(),
            &n("ens3f0"),
            &Handle {
                bus: "pci".into(),
                dev: "0000:37:00.0".into(),
            },
        );
        assert!(st.setup_done);
        assert_eq!(st.autoprobe_before, Some(true));
        assert_eq!(
            st.vfs
                .iter()
                .map(|v| (v.addr.as_str(), v.driver.clone()))
                .collect::<Vec<_>>(),
            [("0000:37:00.2", None), ("0000:37:00.3", None)]
        );

        // A restart changes nothing and says so.
        let calls = net.calls.len();
        let again = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!again.changed);
        assert!(again.status().ends_with("unchanged"), "{}", again.status());
        let new: Vec<_> = net.calls[calls..]
            .iter()
            .filter(|c| c.starts_with("set"))
            .collect();
        assert!(
            new.iter().all(|c| c.contains("param")) || new.is_empty(),
            "{new:?}"
        );
        // nothing sent, nothing to read back
        assert_eq!(
            reads(&net.calls[calls..]),
            ["dump offload", "dump channels"]
        );
        assert!(again
            .warnings
            .iter()
            .any(|w| w.contains("flow_steering_mode=smfs not applied")));
    }

    #[test]
    fn bound_vfs_are_unbound_from_their_own_driver_and_remembered() {
        let (t, devs) = nic(2, Some("igbvf"));
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "igbvf");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        l.eswitch = ConfEswitch::Legacy;
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs, legacy, offload on");
        assert!(!t.exists(&format!("{}.2/driver", devs[0].rsplit_once('.').unwrap().0)));
        assert!(
            net.calls.iter().all(|c| !c.contains("eswitch")),
            "legacy never touches the eswitch"
        );
        let st = State::load(
            &t.root(),
            &n("ens3f0"),
            &Handle {
                bus: "pci".into(),
                dev: "0000:37:00.0".into(),
            },
        );
        assert_eq!(
            st.vfs
                .iter()
                .map(|v| v.driver.as_deref())
                .collect::<Vec<_>>(),
            [Some("igbvf"), Some("igbvf")]
        );
        assert_eq!(
            st.autoprobe_before, None,
            "VF count unchanged: autoprobe untouched"
        );
    }

    #[test]
    fn other_vf_count_is_reset_to_zero_first() {
        let (t, devs) = nic(3, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(t.read(&format!("{}/sriov_numvfs", devs[0])), "2");
        assert!(
            !t.exists(&format!("{}/virtfn2", devs[0])),
            "the fake kernel saw the 0 and removed the third VF"
        );
    }

    #[test]
    fn enslaved_pf_is_refused_before_any_change() {
        let (t, _) = nic(0, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        let mut net = FakeNet::new(2);
        let err = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(err, StageError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("enslaved to bond0"), "{err}");
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:37:00.0/sriov_numvfs"),
            "0\n"
        );
        // Also when only rtnetlink says so (IFF_SLAVE without a sysfs master link).
        let (t, _) = nic(0, None);
        let mut net = FakeNet::new(2);
        net.slave = true;
        let err = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(err, StageError::Refused { .. }), "{err}");
    }

    #[test]
    fn guards() {
        let (t, _) = nic(0, None);
        let mut net = FakeNet::new(9);
        let e = setup_with(&t.root(), &lag(9), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("at most 8"), "{e}");
        let e = setup_with(&t.root(), &lag(2), &n("ens9"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("not a PF of LAG"), "{e}");
        let mut l = lag(2);
        l.pfs.push(n("ens9"));
        let e = setup_with(&t.root(), &l, &n("ens9"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::Refused { .. }) && e.to_string().contains("does not exist"),
            "{e}"
        );
        // Two PFs on different cards.
        t.pci_pf("ens4f1", "0000:81:00.1", 6, Some(8), 0, None);
        let mut l = lag(2);
        l.pfs = vec![n("ens3f0"), n("ens4f1")];
        let e = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("not two ports of one NIC"), "{e}");
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:37:00.0/sriov_numvfs"),
            "0\n"
        );
    }

    #[test]
    fn vfs_in_use_by_vms_are_never_pulled() {
        let (t, _) = nic(2, Some("mlx5_core"));
        t.driver("pci", "vfio-pci");
        t.link(
            "sys/devices/pci0000:00/0000:37:00.3/driver",
            "sys/bus/pci/drivers/vfio-pci",
        );
        let mut net = FakeNet::new(2);
        let e = setup_with(&t.root(), &lag(3), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::Refused { .. }) && e.to_string().contains("in use by a VM"),
            "{e}"
        );
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:37:00.0/sriov_numvfs"),
            "2\n"
        );
        assert_eq!(t.read("sys/bus/pci/drivers/mlx5_core/unbind"), "");
        assert!(net.writes().is_empty());
    }

    #[test]
    fn more_than_64_vfs_warns() {
        let t = Tree::new();
        let d = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(127), 65, None);
        let _ = d;
        let mut net = FakeNet::new(65);
        let mut l = lag(65);
        l.pfs = vec![n("ens3f0")];
        l.representor_channels = None;
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(
            r.warnings.iter().any(|w| w.contains("more than 64")),
            "{:?}",
            r.warnings
        );
        assert_eq!(r.representors, Some(65));
    }

    #[test]
    fn missing_representors_time_out_and_fixed_offload_is_incomplete() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1); // only VF 0's representor ever shows up
        let mut tm = quick();
        tm.representors = Duration::from_millis(300);
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &tm).unwrap_err();
        assert!(e.to_string().contains("2 representors"), "{e}");

        let mut net = FakeNet::new(2);
        net.features.insert(
            51,
            Feature {
                active: false,
                wanted: false,
                changeable: false,
            },
        );
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        match &e {
            StageError::Incomplete { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert!(problems[0].contains("eth1 (VF 1)") && problems[0].contains("[fixed]"));
            }
            e => panic!("{e}"),
        }
        // the other ports were still tuned
        assert!(net.calls.contains(&"set offload #50 true".to_string()));
    }

    #[test]
    fn ports_a_dump_leaves_out_are_asked_alone_and_offload_kept_off_is_incomplete() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        net.undumped = vec![51];
        net.keeps_offload_off = vec![50];
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        match &e {
            StageError::Incomplete { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert!(
                    problems[0].contains("eth0 (VF 0)") && problems[0].contains("kept it off"),
                    "{problems:?}"
                );
            }
            e => panic!("{e}"),
        }
        // the port the dumps missed was read alone, before and after its changes, and tuned
        let alone: Vec<_> = net.calls.iter().filter(|c| c.starts_with("get")).collect();
        assert_eq!(
            alone,
            [
                "get offload #51",
                "get channels #51",
                "get offload #51",
                "get channels #51"
            ]
        );
        assert!(net.calls.contains(&"set offload #51 true".to_string()));
        assert!(net.calls.contains(&"set channels #51 16".to_string()));
    }

    #[test]
    fn representor_names_flag_only_when_a_lag_asks_for_them() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!representor_names_flag(&t.root()).exists());
        l.representor_names = true;
        setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(representor_names_flag(&t.root()).exists());
    }

    #[test]
    fn channels_are_not_read_when_none_are_configured() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let mut l = lag(2);
        l.pf_channels = None;
        l.representor_channels = None;
        setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        let reads: Vec<_> = net
            .calls
            .iter()
            .filter(|c| c.starts_with("get") || c.starts_with("dump"))
            .collect();
        assert_eq!(reads, ["dump offload", "dump offload"]);
    }

    #[test]
    fn nic_lock_is_shared_by_both_ports() {
        let (t, _) = nic(0, None);
        let root = t.root();
        let other = Pf::open(&root, &n("ens3f1")).unwrap();
        let held = lock_nic(&root, &other, Duration::from_secs(1)).unwrap();
        assert!(held.path.ends_with("nic-0000:37:00.lock"));
        let mut net = FakeNet::new(2);
        let e = setup_with(&root, &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("could not lock"), "{e}");
        assert!(net.calls.is_empty());
        drop(held);
        let me = Pf::open(&root, &n("ens3f0")).unwrap();
        lock_nic(&root, &me, Duration::from_secs(1)).unwrap();
    }

    /// The unit's deadline (not the lock's own cap) ends the wait for a held NIC lock, before
    /// systemd would kill the unit, with an error that names the holder.
    #[test]
    fn lock_wait_ends_before_the_unit_deadline_and_names_the_holder() {
        let (t, _) = nic(0, None);
        let root = t.root();
        let other = Pf::open(&root, &n("ens3f1")).unwrap();
        let held = lock_nic(&root, &other, Duration::from_secs(1)).unwrap();
        let record = fs::read_to_string(&held.path).unwrap();
        assert!(
            record.contains(&format!("pid={}", std::process::id())),
            "{record}"
        );
        let mut tm = quick();
        tm.lock = Duration::from_secs(300);
        let unit = Duration::from_millis(800);
        tm.budget = Budget::with_deadline(crate::budget::MARGIN + unit, Duration::ZERO);
        let started = Instant::now();
        let mut net = FakeNet::new(2);
        let e = setup_with(&root, &lag(2), &n("ens3f0"), &mut net, &tm).unwrap_err();
        let took = started.elapsed();
        assert!(took < unit + Duration::from_millis(500), "{took:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("could not lock") && msg.contains("the unit's start timeout"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("held by vflag (pid {})", std::process::id()))
                || msg.contains(&format!("(pid {})", std::process::id())),
            "{msg}"
        );
        assert!(net.calls.is_empty());
        drop(held);
        assert_eq!(
            fs::read_to_string(nic_lock_path(&root, &other)).unwrap(),
            "",
            "record cleared on release"
        );
    }

    /// Representors that never all appear: the wait ends at the unit's deadline (less the
    /// margin), not after its own 60 s cap, with an error saying what it waited for.
    #[test]
    fn representor_wait_ends_at_the_unit_deadline() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1);
        net.mode = EswitchMode::Switchdev; // already: the wait, not the mode change, is tested
        let mut tm = quick();
        tm.representors = Duration::from_secs(60);
        tm.budget = Budget::with_deadline(
            crate::budget::MARGIN + Duration::from_millis(1500),
            Duration::ZERO,
        );
        let started = Instant::now();
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &tm).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let msg = e.to_string();
        assert!(
            msg.contains("gave up waiting for 2 representors of ens3f0")
                && msg.contains("the unit's start timeout")
                && msg.contains("setup-timeout-max"),
            "{msg}"
        );
    }

    fn state_for_rebind(t: &Tree, drivers: &[Option<&str>]) {
        let st = State {
            device: "pci/0000:37:00.0".into(),
            autoprobe_before: Some(true),
            vfs: drivers
                .iter()
                .enumerate()
                .map(|(i, d)| VfRecord {
                    index: i as u32,
                    addr: format!("0000:37:00.{}", 2 + i),
                    driver: d.map(str::to_string),
                })
                .collect(),
            setup_done: true,
            port: None,
        };
        st.save(&t.root(), &n("ens3f0")).unwrap();
    }

    #[test]
    fn rebind_binds_each_vf_back_after_a_valid_bond() {
        let (t, devs) = nic(2, None);
        t.driver("pci", "igbvf");
        t.write(&format!("{}/sriov_drivers_autoprobe", devs[0]), "0\n");
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[Some("igbvf"), None]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let r = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs bound, bond0 802.3ad, LAG not observable");
        assert_eq!(
            t.read(&format!("{}/sriov_drivers_autoprobe", devs[0])),
            "1",
            "autoprobe restored"
        );
        let drv = |i: u32| {
            sysfs::link_basename(&t.p(&format!(
                "sys/devices/pci0000:00/0000:37:00.{}/driver",
                2 + i
            )))
            .unwrap()
        };
        assert_eq!(
            drv(0).as_deref(),
            Some("igbvf"),
            "back to the recorded driver"
        );
        assert_eq!(
            drv(1).as_deref(),
            Some("mlx5_core"),
            "never-bound VF: bus match via drivers_probe"
        );
        // Again: nothing to do.
        let again = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!again.changed && again.bound == Some(2));
    }

    /// A driver name from the state file that is not one path component is refused, and no
    /// bind file anywhere is written for it.
    #[test]
    fn rebind_refuses_a_recorded_driver_that_is_not_a_name() {
        let (t, devs) = nic(2, None);
        t.driver("pci", "igbvf");
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        // ../../.. from sys/bus/pci/drivers/ is the root: "bind" there would be a file of it
        let evil = "../../../..";
        std::fs::write(t.p("bind"), "").unwrap();
        state_for_rebind(&t, &[Some(evil), Some("igbvf")]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let e = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        match &e {
            StageError::Incomplete { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert!(
                    problems[0].contains("not a valid driver name"),
                    "{problems:?}"
                );
            }
            e => panic!("{e}"),
        }
        assert_eq!(
            t.read("bind"),
            "",
            "nothing written outside /sys/bus/pci/drivers"
        );
        for bad in ["", ".", "..", "a/b", "x\ny", "a\0b", &"m".repeat(65)] {
            assert!(!valid_driver_name(bad), "{bad:?}");
        }
        for good in ["mlx5_core", "vfio-pci", "igbvf", "ixgbevf"] {
            assert!(valid_driver_name(good), "{good}");
        }
    }

    /// `sriov_drivers_autoprobe` is recorded before it is turned off: when the record cannot be
    /// written, autoprobe is left as it was.
    #[test]
    fn autoprobe_is_recorded_before_it_is_turned_off() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let probe = format!("{}/sriov_drivers_autoprobe", devs[0]);
        assert_eq!(t.read(&probe).trim(), "1");
        // The record's temporary file cannot be created: the first save fails.
        std::fs::create_dir_all(state_path(&t.root(), &n("ens3f0")).with_extension("json.tmp"))
            .unwrap();
        let mut net = FakeNet::new(2);
        let e = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("cannot write"), "{e}");
        assert_eq!(
            t.read(&probe).trim(),
            "1",
            "autoprobe untouched without a record"
        );
    }

    /// The seed's multi-NIC `SRIOV_PFS`: two cards' ports listed interleaved in one LAG.
    fn two_nic_lag(nic: &Tree, listed: &[&str]) -> Lag {
        nic.pci_pf("ens4f0", "0000:3b:00.0", 6, Some(8), 0, None);
        nic.pci_pf("ens4f1", "0000:3b:00.1", 7, Some(8), 0, None);
        let mut l = lag(2);
        l.pfs = listed.iter().map(|p| n(p)).collect();
        l
    }

    #[test]
    fn multi_nic_sysconfig_pairs_each_pf_with_its_own_nic() {
        let (t, devs) = nic(0, None);
        let l = two_nic_lag(&t, &["ens3f0", "ens4f0", "ens3f1", "ens4f1"]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.status(), "2 VFs, switchdev, offload on, 2 representors");
        // The late stage takes bond0 over this NIC's two ports as the whole LAG.
        t.bond("bond0", "active-backup", &["ens3f0", "ens3f1"]);
        let r = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.bond.as_deref(), Some("bond0 active-backup"), "{r:?}");
        assert_eq!(r.bound, Some(2));
    }

    #[test]
    fn multi_nic_sysconfig_refuses_a_pf_without_partner_and_changes_nothing() {
        let (t, _) = nic(0, None);
        let l = two_nic_lag(&t, &["ens3f0", "ens3f1", "ens4f0"]);
        let mut net = FakeNet::new(2);
        let e = setup_with(&t.root(), &l, &n("ens4f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(e, StageError::Refused { .. }), "{e}");
        assert!(
            e.to_string().starts_with(
                "ens4f0: no other port of its NIC (0000:3b:00) is listed in SRIOV_PFS"
            ),
            "{e}"
        );
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read("sys/devices/pci0000:00/0000:3b:00.0/sriov_numvfs"),
            "0\n"
        );
        let e = rebind_with(&t.root(), &l, &n("ens4f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("no other port of its NIC"), "{e}");
        // The other card's ports still pass the pairing (and fail later only for want of VFs).
        let (t2, devs) = nic(0, None);
        let l = two_nic_lag(&t2, &["ens3f0", "ens3f1", "ens4f0"]);
        let _k = FakeKernel::spawn(t2.dir.path(), &devs, "mlx5_core");
        let r = setup_with(&t2.root(), &l, &n("ens3f1"), &mut FakeNet::new(2), &quick());
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn rebind_legacy_single_port_needs_no_bond() {
        let (t, devs) = nic(2, None);
        t.driver("pci", "igbvf");
        t.write(&format!("{}/sriov_drivers_autoprobe", devs[0]), "0\n");
        state_for_rebind(&t, &[Some("igbvf"), Some("igbvf")]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "igbvf");
        let mut net = FakeNet::new(2);
        let mut one = lag(2);
        one.pfs.truncate(1);
        one.eswitch = ConfEswitch::Legacy;
        let r = rebind_with(&t.root(), &one, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.bound, Some(2), "{r:?}");
        // Two legacy ports still wait for their bond, but not for a LAG.
        let mut two = lag(2);
        two.eswitch = ConfEswitch::Legacy;
        let err = rebind_with(&t.root(), &two, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(matches!(err, StageError::NotBound { .. }), "{err}");
    }

    #[test]
    fn rebind_refuses_when_the_early_stage_did_not_complete() {
        let (t, devs) = nic(2, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let err = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            err.to_string().contains("early stage did not complete"),
            "{err}"
        );
        assert!(
            net.writes().is_empty(),
            "nothing changed: {:?}",
            net.writes()
        );
    }

    #[test]
    fn rebind_refuses_without_a_valid_bond() {
        let (t, devs) = nic(2, None);
        state_for_rebind(&t, &[None, None]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(2);
        let unbound = |t: &Tree| !t.exists("sys/devices/pci0000:00/0000:37:00.2/driver");

        let start = Instant::now();
        let e = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::NotBound { .. }) && e.to_string().contains("not enslaved"),
            "{e}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "bounded by lag_timeout"
        );
        assert!(unbound(&t));

        // balance-rr can never carry VF-LAG: refused at once, even with a long timeout.
        t.bond("bond0", "balance-rr 0", &["ens3f0", "ens3f1"]);
        let mut l = lag(2);
        l.lag_timeout = Duration::from_secs(60);
        let start = Instant::now();
        let e = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("mode balance-rr"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));

        // A third member.
        t.bond("bond0", "active-backup 1", &["ens3f0", "ens3f1", "eno1"]);
        let e = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("also has eno1"), "{e}");

        // Only one PF in it (yet).
        t.bond("bond0", "active-backup 1", &["ens3f0"]);
        let e = rebind_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(e.to_string().contains("does not contain ens3f1"), "{e}");
        assert!(unbound(&t));
    }

    #[test]
    fn rebind_waits_for_mlx5_lag_activation() {
        let (t, devs) = nic(1, None);
        t.bond("bond0", "balance-xor 2", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None]);
        t.write("sys/kernel/debug/mlx5/0000:37:00.0/lag/state", "disabled\n");
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1);
        let e = rebind_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            e.to_string().contains("did not become active") && e.to_string().contains("disabled"),
            "{e}"
        );
        assert!(!t.exists("sys/devices/pci0000:00/0000:37:00.2/driver"));

        let p = t.p("sys/kernel/debug/mlx5/0000:37:00.0/lag/state");
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            fs::write(p, "active\n").unwrap();
        });
        let mut l = lag(1);
        l.lag_timeout = Duration::from_secs(5);
        let r = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        h.join().unwrap();
        assert_eq!(r.lag.as_deref(), Some("active"));
        assert_eq!(r.bound, Some(1));
    }

    /// The debugfs directory is named after the device name on any bus (mlx5: dev_name), so a
    /// non-PCI device with the LAG files is waited for too (the test bed's ConnectX model).
    #[test]
    fn rebind_waits_for_the_lag_in_debugfs_of_a_non_pci_device() {
        let t = Tree::new();
        let mut devs = vec![];
        for (name, id) in [("eni10np1", 10), ("eni11np1", 11)] {
            let dev = format!("sys/devices/netdevsim{id}");
            t.write(&format!("{dev}/sriov_numvfs"), "2\n");
            t.link(&format!("{dev}/subsystem"), "sys/bus/netdevsim");
            t.netdev(name, id, Some(&dev));
            devs.push(dev);
        }
        t.bond("bond0", "active-backup 1", &["eni10np1", "eni11np1"]);
        State {
            device: "netdevsim/netdevsim10".into(),
            autoprobe_before: None,
            vfs: vec![],
            setup_done: true,
            port: None,
        }
        .save(&t.root(), &n("eni10np1"))
        .unwrap();
        t.write("sys/kernel/debug/mlx5/netdevsim11/lag/state", "disabled\n");
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "netdevsim");
        let mut net = FakeNet::new(1);
        let mut l = lag(1);
        l.pfs = vec![n("eni10np1"), n("eni11np1")];
        let e = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap_err();
        assert!(
            e.to_string().contains("did not become active")
                && e.to_string().contains("netdevsim11 lag/state: disabled"),
            "{e}"
        );
        t.write("sys/kernel/debug/mlx5/netdevsim11/lag/state", "active\n");
        let r = rebind_with(&t.root(), &l, &n("eni10np1"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("active"));
    }

    #[test]
    fn rebind_reads_the_lag_from_the_kernel_log_without_debugfs() {
        let (t, devs) = nic(1, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None]);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut net = FakeNet::new(1);
        let vf_bound = |t: &Tree| t.exists("sys/devices/pci0000:00/0000:37:00.2/driver");

        // A logged failure is final: no waiting for the bound, no binding.
        t.write(
            "dev/kmsg",
            "3,812,9000000,-;mlx5_core 0000:37:00.0: Failed to create LAG (-22)\n",
        );
        let mut l = lag(1);
        l.lag_timeout = Duration::from_secs(30);
        let start = Instant::now();
        let e = rebind_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            matches!(e, StageError::NotBound { .. }) && e.to_string().contains("firmware refused"),
            "{e}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!vf_bound(&t));

        // Silence: bounded wait, then bind with a warning (the log is a heuristic).
        t.write("dev/kmsg", "6,1,1000,-;something else\n");
        let r = rebind_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("not seen"));
        assert!(
            r.warnings.iter().any(|w| w.contains("binding anyway")),
            "{:?}",
            r.warnings
        );
        assert!(vf_bound(&t));

        // Activation logged by the pair's first PF counts for the second one too.
        t.write(
            "dev/kmsg",
            "6,900,12000000,-;mlx5_core 0000:37:00.0: lag map port 1:1 port 2:1 shared_fdb:1\n",
        );
        let st = State {
            device: "pci/0000:37:00.1".into(),
            setup_done: true,
            ..State::default()
        };
        st.save(&t.root(), &n("ens3f1")).unwrap();
        let r = rebind_with(&t.root(), &lag(1), &n("ens3f1"), &mut net, &quick()).unwrap();
        assert_eq!(r.lag.as_deref(), Some("active (kernel log)"));
    }

    #[test]
    fn restart_of_an_enslaved_configured_pf_is_a_noop() {
        let (t, _) = nic(2, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        state_for_rebind(&t, &[None, None]);
        let mut net = FakeNet::new(2);
        net.mode = EswitchMode::Switchdev;
        for f in net.features.values_mut() {
            f.active = true;
        }
        let r = setup_with(&t.root(), &lag(2), &n("ens3f0"), &mut net, &quick()).unwrap();
        assert!(!r.changed);
        assert_eq!(
            r.status(),
            "2 VFs, switchdev, offload on, 2 representors, unchanged"
        );
        assert!(net.writes().is_empty());
    }

    #[test]
    fn pf_recreated_by_the_mode_change_is_found_by_its_device() {
        // mlx5 style: the PF netdev comes back as the uplink representor, ifindex 9, named by
        // udev `ens3f0np0` — or `ens3f0` again when vflag's naming rule is installed.
        let recreated = |final_name: &'static str| {
            let (t, devs) = nic(0, None);
            let k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
            let mut net = FakeNet::new(1);
            let off = Feature {
                active: false,
                wanted: false,
                changeable: true,
            };
            net.features.insert(9, off);
            net.channels.insert(9, (8, 63));
            net.names.insert(9, final_name.into());
            let (root, dev) = (t.dir.path().to_path_buf(), devs[0].clone());
            net.on_switchdev = Some(Box::new(move || {
                fs::remove_file(root.join("sys/class/net/ens3f0")).unwrap();
                let nd = root.join(&dev).join("net");
                fs::rename(nd.join("ens3f0"), nd.join("ens3f0np0")).unwrap();
                fs::write(nd.join("ens3f0np0/ifindex"), "9\n").unwrap();
                if final_name == "ens3f0" {
                    fs::rename(nd.join("ens3f0np0"), nd.join("ens3f0")).unwrap();
                    std::os::unix::fs::symlink(
                        nd.join("ens3f0"),
                        root.join("sys/class/net/ens3f0"),
                    )
                    .unwrap();
                }
            }));
            let res = setup_with(&t.root(), &lag(1), &n("ens3f0"), &mut net, &quick());
            drop(k);
            (res, net)
        };
        // Without vflag's naming rule: fail loudly before any bond step.
        let (res, _) = recreated("ens3f0np0");
        let err = res.unwrap_err();
        assert!(
            err.to_string().contains("renamed ens3f0 to ens3f0np0"),
            "{err}"
        );
        // With it, set-up goes on with the new ifindex.
        let (res, net) = recreated("ens3f0");
        let r = res.unwrap();
        assert!(
            net.calls.contains(&"set offload #9 true".to_string()),
            "{:?}",
            net.calls
        );
        assert!(
            !net.calls.iter().any(|c| c.contains("#4 ")),
            "{:?}",
            net.calls
        );
        assert!(
            r.warnings.iter().any(|w| w.contains("re-created")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn params_fall_back_to_ofed_compat_sysfs_else_fail_with_the_kernel_text() {
        let (t, devs) = nic(0, None);
        let _k = FakeKernel::spawn(t.dir.path(), &devs, "mlx5_core");
        let mut l = lag(1);
        l.lag_port_select_mode = Some("hash".into());
        let mut net = FakeNet::new(1);
        net.no_params = true;
        let e = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap_err();
        assert!(
            e.to_string().contains("Requested parameter does not exist"),
            "{e}"
        );
        assert!(net.writes().is_empty());
        assert_eq!(
            t.read(&format!("{}/sriov_numvfs", devs[0])),
            "0\n",
            "stopped before the VFs"
        );
        let compat = format!("{}/net/ens3f0/compat/devlink/lag_port_select_mode", devs[0]);
        t.write(&compat, "queue_affinity\n");
        let r = setup_with(&t.root(), &l, &n("ens3f0"), &mut net, &quick()).unwrap();
        assert_eq!(t.read(&compat), "hash");
        assert!(r.changed);
    }

    #[test]
    fn state_record_keeps_first_known_driver() {
        let mut st = State::default();
        let vf = |a: &str| sysfs::Vf {
            index: 0,
            addr: a.into(),
            dir: "/x".into(),
        };
        st.record(&vf("0000:37:00.2"), Some("mlx5_core".into()));
        st.record(&vf("0000:37:00.2"), None);
        assert_eq!(st.vfs[0].driver.as_deref(), Some("mlx5_core"));
        st.record(&vf("0000:37:00.9"), None);
        assert_eq!(
            st.vfs[0].driver, None,
            "another device at this index: old record dropped"
        );
        assert_eq!(st.vfs.len(), 1);
    }
}
