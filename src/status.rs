//! `vflag status`: is VF-LAG working on this host right now? Every check of the seed's
//! "Troubleshooting: Is it Working?" list, as [`Finding`]s (rendered by [`crate::report`]):
//!
//! | seed's command | check(s) |
//! | --- | --- |
//! | `dmesg \| grep 'mlx5.*lag'` | `lag` (debugfs `lag/state` + `lag/type`, else `/dev/kmsg`) |
//! | `lspci`, `cat .../sriov_numvfs`, `ip link show` | `vfs`, `vfs-bound`, `link`, `bond` |
//! | `devlink dev eswitch show` | `eswitch` |
//! | `ethtool -k ... hw-tc-offload` | `pf-offload`, `rep-offload` (+ `representors`) |
//! | `ethtool -l` / `-L` | `pf-channels`, `rep-channels` |
//! | "no Linux bridge on bond0", bond of both ports | `bond-mode`, `bond-members`, `bond-bridge` |
//! | `ovs-vsctl --version` | `ovs`, `ovs-version` |
//! | `ovs-vsctl get ... other_config:hw-offload` | `ovs-hw-offload` |
//! | `ovs-appctl dpctl/dump-flows type=offloaded` | `ovs-flows` |
//! | "failed to offload flow" in the OVS log | `ovs-errors` |
//!
//! No forks, no `docker exec`, nothing waits: sysfs and debugfs reads, one non-blocking read of
//! `/dev/kmsg`, kernel netlink (devlink/ethtool) and the OVS sockets with a short bound
//! ([`OVS_TIMEOUT`]).
//!
//! The code is split into *observing* (sysfs, netlink, logs → plain data: [`PfObs`],
//! [`BondObs`], [`OvsObs`]) and *judging* (data + config → findings). Netlink answers appear in
//! the observations as `Result<_, String>`, so a kernel without devlink (or a test root, where
//! netlink is never asked because it would describe the real machine's devices) yields a
//! finding with the error text instead of a panic.

use crate::checks::{self, Finding, Outcome};
use crate::config::{EswitchMode as ConfEswitch, Lag, Loaded};
use crate::device::devlink::{Devlink, EswitchMode};
use crate::device::ethtool::{Channels, Ethtool, Feature, HW_TC_OFFLOAD};
use crate::device::repr::{self, Source};
use crate::device::sysfs::{self, Pf};
use crate::kernlog::{self, DebugfsLag, LagReport, LagState, OffloadError};
use crate::names::IfName;
use crate::ovsdb::{self, OvsError, OvsStatus, OvsdbClient};
use crate::paths::Root;
use crate::stages::{LAG_BOND_MODES, LAG_MAX_VFS};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bound for connecting to and asking each OVS socket (database, ovs-vswitchd).
pub const OVS_TIMEOUT: Duration = Duration::from_millis(1000);
/// ovs-vswitchd log files, Kolla's first.
pub const OVS_LOGS: [&str; 2] = [
    "/var/log/kolla/openvswitch/ovs-vswitchd.log",
    "/var/log/openvswitch/ovs-vswitchd.log",
];
/// How much of the end of an OVS log is read.
pub const OVS_LOG_TAIL: u64 = 1 << 20;
/// Offload errors younger than this count as recent.
pub const RECENT: Duration = Duration::from_secs(3600);

/// An observation that may have failed; the error is kept as text for the finding.
pub type Seen<T> = Result<T, String>;

/// Knobs of [`collect_with`]; [`Options::for_root`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ask the running kernel over netlink (devlink, ethtool). Off under a test root.
    pub netlink: bool,
    pub ovs_timeout: Duration,
    /// "Now", for the age of OVS log lines.
    pub now: SystemTime,
}

impl Options {
    pub fn for_root(root: &Root) -> Self {
        Options {
            netlink: root.is_real(),
            ovs_timeout: OVS_TIMEOUT,
            now: SystemTime::now(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Findings

fn finding(
    check: &'static str,
    pf: Option<&IfName>,
    outcome: Outcome,
    detail: impl Into<String>,
    hint: Option<String>,
) -> Finding {
    Finding {
        check,
        pf: pf.cloned(),
        outcome,
        detail: detail.into(),
        hint,
    }
}

fn pass(check: &'static str, pf: Option<&IfName>, detail: impl Into<String>) -> Finding {
    finding(check, pf, Outcome::Pass, detail, None)
}

fn skip(check: &'static str, pf: Option<&IfName>, detail: impl Into<String>) -> Finding {
    finding(check, pf, Outcome::Skip, detail, None)
}

fn bad(
    check: &'static str,
    pf: Option<&IfName>,
    outcome: Outcome,
    detail: impl Into<String>,
    hint: impl Into<String>,
) -> Finding {
    finding(check, pf, outcome, detail, Some(hint.into()))
}

fn early_unit(pf: &IfName) -> String {
    format!("vflag@{}.service", pf.unit_instance())
}

fn late_unit(pf: &IfName) -> String {
    format!("vflag-rebind@{}.service", pf.unit_instance())
}

// ------------------------------------------------------------------------------------------
// Observations

/// One netdev's TC offload and channels (the PF or a representor).
#[derive(Debug, Clone)]
pub struct PortObs {
    pub name: String,
    /// The VF it represents (representors only).
    pub vf: Option<u32>,
    pub offload: Seen<Feature>,
    pub channels: Seen<Channels>,
}

impl PortObs {
    fn label(&self) -> String {
        match self.vf {
            Some(v) => format!("{} (VF {v})", self.name),
            None => self.name.clone(),
        }
    }
}

/// A VF device and the driver bound to it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfObs {
    pub index: u32,
    pub addr: String,
    pub driver: Option<String>,
}

/// Everything seen about one configured PF.
#[derive(Debug, Clone)]
pub struct PfObs {
    pub name: IfName,
    /// The PF's device could not be opened (missing netdev, virtual interface).
    pub missing: Option<String>,
    /// devlink handle `pci/0000:37:00.0`.
    pub handle: String,
    /// PCI address when on PCI.
    pub pci: Option<String>,
    /// Driver of the PF's device (`mlx5_core`).
    pub driver: Option<String>,
    pub numvfs: Seen<Option<u32>>,
    pub vfs: Seen<Vec<VfObs>>,
    /// eswitch mode and where it was read (`devlink`, `compat sysfs`).
    pub eswitch: Seen<(EswitchMode, &'static str)>,
    pub port: PortObs,
    pub reps: Seen<(Vec<PortObs>, Source)>,
    /// Name of the master device (bond), from sysfs.
    pub master: Option<String>,
    /// `operstate` (`up`, `down`, `lowerlayerdown`...), from sysfs.
    pub operstate: Option<String>,
    /// mlx5 debugfs LAG files of this PF (or of the other PF of the pair when this one has none).
    pub debugfs: Seen<Option<DebugfsLag>>,
}

/// What the PF's master (the bond) looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondObs {
    pub name: String,
    /// `None`: the master is not a bond.
    pub mode: Option<String>,
    pub slaves: Vec<String>,
    /// The bond's own master, if any.
    pub upper: Option<Upper>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upper {
    /// A Linux bridge (has `bridge/`).
    Bridge(String),
    /// Open vSwitch's kernel datapath device (`ovs-system`).
    Ovs(String),
    Other(String),
}

/// Open vSwitch as seen through its sockets and its log.
#[derive(Debug, Clone)]
pub struct OvsObs {
    pub status: OvsStatus,
    /// The log file read and the offload errors in its tail; `Ok(None)`: no log file found.
    pub log: Seen<Option<(PathBuf, Vec<OffloadError>)>>,
}

/// The running kernel's devlink and ethtool families, opened on first use (never when
/// `enabled` is false).
struct Kernel {
    enabled: bool,
    devlink: Option<Result<Devlink, String>>,
    ethtool: Option<Result<Ethtool, String>>,
    /// hw-tc-offload and channels of every netdev, dumped once: two requests instead of two
    /// per representor. A device missing from them is asked on its own (for its error).
    offload_table: Option<Result<HashMap<u32, Feature>, String>>,
    channels_table: Option<Result<HashMap<u32, Channels>, String>>,
}

const NO_NETLINK: &str =
    "netlink not asked: VFLAG_ROOT re-roots sysfs, the running kernel would describe other devices";

impl Kernel {
    fn new(enabled: bool) -> Self {
        Kernel {
            enabled,
            devlink: None,
            ethtool: None,
            offload_table: None,
            channels_table: None,
        }
    }

    fn devlink(&mut self) -> Result<&mut Devlink, String> {
        if !self.enabled {
            return Err(NO_NETLINK.into());
        }
        self.devlink
            .get_or_insert_with(|| Devlink::open().map_err(|e| format!("devlink: {e}")))
            .as_mut()
            .map_err(|e| e.clone())
    }

    fn ethtool(&mut self) -> Result<&mut Ethtool, String> {
        if !self.enabled {
            return Err(NO_NETLINK.into());
        }
        self.ethtool
            .get_or_insert_with(|| Ethtool::open().map_err(|e| format!("ethtool netlink: {e}")))
            .as_mut()
            .map_err(|e| e.clone())
    }

    fn tables(&mut self) {
        if self.offload_table.is_none() {
            self.offload_table = Some(match self.ethtool() {
                Ok(et) => et.dump_feature(HW_TC_OFFLOAD).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            });
        }
        if self.channels_table.is_none() {
            self.channels_table = Some(match self.ethtool() {
                Ok(et) => et.dump_channels().map_err(|e| e.to_string()),
                Err(e) => Err(e),
            });
        }
    }

    fn port(&mut self, name: &str, ifindex: Option<u32>, vf: Option<u32>) -> PortObs {
        let idx = ifindex.ok_or_else(|| format!("{name} has no ifindex"));
        if idx.is_ok() {
            self.tables();
        }
        let offload = idx
            .clone()
            .and_then(|i| match dumped(&self.offload_table, i) {
                Some(f) => Ok(f),
                None => self
                    .ethtool()?
                    .feature(i, HW_TC_OFFLOAD)
                    .map_err(|e| e.to_string()),
            });
        let channels = idx.and_then(|i| {
            if let Some(c) = dumped(&self.channels_table, i) {
                return Ok(c);
            }
            // In both dumps' namespace but not in the channels dump: the kernel skipped it
            // for EOPNOTSUPP, i.e. no channel settings at all (netdevsim).
            let listed = dumped(&self.offload_table, i).is_some()
                && matches!(self.channels_table, Some(Ok(_)));
            if listed {
                return Ok(NO_CHANNELS);
            }
            match self.ethtool()?.channels(i) {
                Err(crate::device::Error::Kernel { errno: 95, .. }) => Ok(NO_CHANNELS),
                r => r.map_err(|e| e.to_string()),
            }
        });
        PortObs {
            name: name.to_string(),
            vf,
            offload,
            channels,
        }
    }
}

/// What a dump said about device `i`, if it ran and listed it.
fn dumped<T: Copy>(table: &Option<Result<HashMap<u32, T>, String>>, i: u32) -> Option<T> {
    table.as_ref()?.as_ref().ok()?.get(&i).copied()
}

/// A driver without channel settings (EOPNOTSUPP): nothing to judge.
const NO_CHANNELS: Channels = Channels {
    combined: None,
    combined_max: None,
};

fn unobserved_port(name: &str) -> PortObs {
    PortObs {
        name: name.to_string(),
        vf: None,
        offload: Err("not observed".into()),
        channels: Err("not observed".into()),
    }
}

fn observe_pf(root: &Root, lag: &Lag, name: &IfName, k: &mut Kernel) -> PfObs {
    let mut o = PfObs {
        name: name.clone(),
        missing: None,
        handle: String::new(),
        pci: None,
        driver: None,
        numvfs: Ok(None),
        vfs: Ok(vec![]),
        eswitch: Err("not observed".into()),
        port: unobserved_port(name.as_str()),
        reps: Ok((vec![], Source::Sysfs)),
        master: None,
        operstate: None,
        debugfs: Ok(None),
    };
    let pf = match Pf::open(root, name) {
        Ok(p) => p,
        Err(e) => {
            o.missing = Some(e.to_string());
            return o;
        }
    };
    let h = pf.handle();
    o.handle = h.to_string();
    o.pci = pf.pci_addr().map(|_| pf.dev_name.clone());
    o.driver = sysfs::link_basename(&pf.dev_dir.join("driver"))
        .ok()
        .flatten();
    o.numvfs = pf.numvfs().map_err(|e| e.to_string());
    o.vfs = pf.vfs().map_err(|e| e.to_string()).map(|v| {
        v.iter()
            .map(|vf| VfObs {
                index: vf.index,
                addr: vf.addr.clone(),
                driver: vf.driver().ok().flatten(),
            })
            .collect()
    });
    o.eswitch = match k
        .devlink()
        .and_then(|d| d.eswitch_mode(&h).map_err(|e| e.to_string()))
    {
        Ok(m) => Ok((m, "devlink")),
        // NVIDIA OFED's compat sysfs, where devlink cannot answer.
        Err(e) => match sysfs::netdev_attr(root, name.as_str(), "compat/devlink/mode") {
            Ok(Some(m)) if m == "switchdev" => Ok((EswitchMode::Switchdev, "compat sysfs")),
            Ok(Some(m)) if m == "legacy" => Ok((EswitchMode::Legacy, "compat sysfs")),
            _ => Err(e),
        },
    };
    let ifindex = pf.ifindex().ok();
    o.port = k.port(name.as_str(), ifindex, None);
    if lag.eswitch == ConfEswitch::Switchdev {
        let dl = k.devlink().ok();
        o.reps = repr::find(&pf, dl)
            .map_err(|e| e.to_string())
            .map(|(reps, src)| {
                let ports = reps
                    .iter()
                    .map(|r| k.port(&r.name, Some(r.ifindex), Some(r.vf)))
                    .collect();
                (ports, src)
            });
    }
    o.master = pf.master().ok().flatten();
    o.operstate = sysfs::netdev_attr(root, name.as_str(), "operstate")
        .ok()
        .flatten();
    // mlx5 names its debugfs directory after the device (dev_name: the PCI address on PCI),
    // so it is looked up by device name on any bus; a device without it shows nothing.
    {
        o.debugfs = read_debugfs(root, &pf.dev_name);
        if matches!(o.debugfs, Ok(None)) {
            // Look at the other PF of the pair: the files may exist on one function only.
            for other in lag.pfs.iter().filter(|p| *p != name) {
                if let Ok(op) = Pf::open(root, other) {
                    if let Ok(Some(d)) = read_debugfs(root, &op.dev_name) {
                        o.debugfs = Ok(Some(d));
                        break;
                    }
                }
            }
        }
    }
    o
}

fn read_debugfs(root: &Root, pci: &str) -> Seen<Option<DebugfsLag>> {
    kernlog::read_debugfs_lag(root, pci).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!("debugfs not readable ({e}); run as root")
        }
        _ => format!("debugfs: {e}"),
    })
}

fn observe_bond(root: &Root, name: &str) -> BondObs {
    let upper = sysfs::link_basename(&root.path("/sys/class/net").join(name).join("master"))
        .ok()
        .flatten()
        .map(|m| {
            let dir = root.path("/sys/class/net").join(&m);
            if dir.join("bridge").is_dir() {
                Upper::Bridge(m)
            } else if m == "ovs-system" {
                Upper::Ovs(m)
            } else {
                Upper::Other(m)
            }
        });
    BondObs {
        name: name.to_string(),
        mode: sysfs::bond_mode(root, name).ok().flatten(),
        slaves: sysfs::bond_slaves(root, name).unwrap_or_default(),
        upper,
    }
}

/// Open vSwitch through its database and ovs-vswitchd sockets (each bounded by `timeout`; the
/// control socket is looked for next to the database socket), and the tail of its log.
pub fn observe_ovs(root: &Root, db_socket: &Path, timeout: Duration) -> OvsObs {
    let rundir = db_socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new(ovsdb::DEFAULT_RUNDIR));
    let status = ovsdb::ovs_status(root, db_socket, rundir, timeout);
    let mut log = Ok(None);
    for p in OVS_LOGS {
        let path = root.path(p);
        match kernlog::read_ovs_offload_errors(&path, OVS_LOG_TAIL) {
            Ok(errs) => {
                log = Ok(Some((PathBuf::from(p), errs)));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                log = Err(format!("{p}: {e}"));
                break;
            }
        }
    }
    OvsObs { status, log }
}

// ------------------------------------------------------------------------------------------
// Judging one PF

/// The checks of one PF that need nothing but its own observation.
pub fn judge_pf(lag: &Lag, o: &PfObs) -> Vec<Finding> {
    let p = Some(&o.name);
    let pf = &o.name;
    let switchdev = lag.eswitch == ConfEswitch::Switchdev;
    if let Some(why) = &o.missing {
        return vec![bad(
            "present",
            p,
            Outcome::Fail,
            why.clone(),
            "check that the NIC is installed and its driver (mlx5_core) loaded, and the interface name in the config (`vflag plan`); if switchdev renamed it (e.g. ens3f0 -> ens3f0np0, see `journalctl -b -u vflag@*`), pin the PF name with a udev rule on its PCI address",
        )];
    }
    let mut out = vec![];
    let want = lag.vfs;
    let journal = format!("journalctl -b -u {}", early_unit(pf));

    // ---- VFs created.
    out.push(match &o.numvfs {
        Err(e) => bad("vfs", p, Outcome::Fail, format!("cannot read sriov_numvfs: {e}"), format!("see {journal}")),
        Ok(None) => bad(
            "vfs",
            p,
            Outcome::Fail,
            format!("{} has no SR-IOV (no sriov_numvfs)", o.handle),
            "enable SR-IOV in the BIOS and the firmware (mlxconfig -d <device> set SRIOV_EN=1 NUM_OF_VFS=<n>), then reboot",
        ),
        Ok(Some(n)) if *n == want => {
            let links = o.vfs.as_ref().map(|v| v.len()).unwrap_or(0);
            let mut d = format!("{n} VFs (sriov_numvfs), {want} configured");
            if o.pci.is_some() && links as u32 != *n {
                d.push_str(&format!("; {links} virtfn links"));
            }
            if switchdev && *n > LAG_MAX_VFS {
                bad("vfs", p, Outcome::Warn, format!("{d}: VF-LAG does not activate with more than {LAG_MAX_VFS} VFs per PF"), format!("configure at most {LAG_MAX_VFS} VFs per PF"))
            } else {
                pass("vfs", p, d)
            }
        }
        Ok(Some(n)) => bad(
            "vfs",
            p,
            Outcome::Fail,
            format!("{n} VFs (sriov_numvfs), {want} configured"),
            format!("the early stage creates them before the PF joins the bond: see `systemctl status {}` and `{journal}`, fix the cause and reboot", early_unit(pf)),
        ),
    });

    // ---- eswitch mode.
    out.push(match (&o.eswitch, lag.eswitch) {
        (Ok((EswitchMode::Switchdev, src)), ConfEswitch::Switchdev) => {
            pass("eswitch", p, format!("switchdev ({src} {})", o.handle))
        }
        (Ok((m, src)), ConfEswitch::Switchdev) => bad(
            "eswitch",
            p,
            Outcome::Fail,
            format!("{m} ({src} {}), switchdev configured", o.handle),
            format!("the early stage sets switchdev before the PF joins the bond (devlink dev eswitch set {} mode switchdev): see `{journal}`, fix the cause and reboot", o.handle),
        ),
        (Err(e), ConfEswitch::Switchdev) => bad(
            "eswitch",
            p,
            Outcome::Fail,
            format!("cannot read the eswitch mode of {}: {e}", o.handle),
            "VF-LAG needs devlink (kernel with devlink, a driver that supports switchdev, run as root)",
        ),
        (Ok((EswitchMode::Legacy, src)), ConfEswitch::Legacy) => {
            pass("eswitch", p, format!("legacy ({src} {}), as configured", o.handle))
        }
        (Ok((m, src)), ConfEswitch::Legacy) => bad(
            "eswitch",
            p,
            Outcome::Warn,
            format!("{m} ({src} {}), legacy configured (vflag leaves it alone)", o.handle),
            "set eswitch = switchdev in the config if VF-LAG is wanted; else something else changed the mode",
        ),
        (Err(e), ConfEswitch::Legacy) => skip(
            "eswitch",
            p,
            format!("not observable ({e}); legacy configured"),
        ),
    });

    // ---- hw-tc-offload on the PF.
    let off_outcome = if switchdev {
        Outcome::Fail
    } else {
        Outcome::Warn
    };
    out.push(match &o.port.offload {
        Ok(f) if f.active => pass("pf-offload", p, "hw-tc-offload on"),
        Ok(f) if f.changeable => bad(
            "pf-offload",
            p,
            off_outcome,
            "hw-tc-offload off",
            format!("ethtool -K {pf} hw-tc-offload on (the early stage does this at boot: see `{journal}`)"),
        ),
        Ok(_) => bad(
            "pf-offload",
            p,
            off_outcome,
            "hw-tc-offload off [fixed]: the driver does not offer it in this mode",
            "TC offload needs a driver and eswitch mode that support it (mlx5 in switchdev mode)",
        ),
        Err(e) => bad(
            "pf-offload",
            p,
            Outcome::Warn,
            format!("hw-tc-offload not observable: {e}"),
            format!("check by hand: ethtool -k {pf} | grep hw-tc-offload"),
        ),
    });

    // ---- Representors and their offload.
    if switchdev {
        // Counted against the VFs that exist (the vfs row judges the count itself).
        let n = match &o.numvfs {
            Ok(Some(n)) => *n,
            _ => 0,
        };
        match &o.reps {
            Err(e) => out.push(bad(
                "representors",
                p,
                Outcome::Fail,
                format!("cannot list representors: {e}"),
                format!("see `{journal}`"),
            )),
            Ok((reps, src)) => {
                let src = match src {
                    Source::Devlink => "devlink ports",
                    Source::Sysfs => "sysfs",
                };
                let missing: Vec<String> = (0..n)
                    .filter(|i| !reps.iter().any(|r| r.vf == Some(*i)))
                    .map(|i| i.to_string())
                    .collect();
                out.push(if n == 0 {
                    skip("representors", p, "no VFs, no representors")
                } else if missing.is_empty() {
                    pass("representors", p, format!("{} representors for {n} VFs ({src})", reps.len()))
                } else {
                    bad(
                        "representors",
                        p,
                        Outcome::Fail,
                        format!("{} representors for {n} VFs ({src}); none for VF {}", reps.len(), missing.join(", ")),
                        format!("representors exist only in switchdev mode: see the eswitch row and `{journal}`"),
                    )
                });
                if !reps.is_empty() {
                    out.push(judge_rep_offload(pf, reps));
                }
                if let Some(c) = lag.representor_channels {
                    if !reps.is_empty() {
                        out.push(judge_rep_channels(pf, reps, c));
                    }
                }
            }
        }
    } else {
        out.push(skip(
            "representors",
            p,
            "legacy eswitch configured: no representors",
        ));
    }

    // ---- PF channels.
    if let Some(want) = lag.pf_channels {
        out.push(match &o.port.channels {
            Err(e) => bad(
                "pf-channels",
                p,
                Outcome::Warn,
                format!("channels not observable: {e}"),
                format!("check by hand: ethtool -l {pf}"),
            ),
            Ok(ch) => {
                let (outcome, detail, fix) = channels_verdict(ch, want);
                finding(
                    "pf-channels",
                    p,
                    outcome,
                    detail,
                    fix.map(|t| format!("ethtool -L {pf} combined {t}")),
                )
            }
        });
    }

    // ---- Link (the seed's `ip link show`: UP, LOWER_UP).
    out.push(match o.operstate.as_deref() {
        Some("up") => pass("link", p, "operstate up"),
        None | Some("unknown") => skip("link", p, "operstate not reported"),
        Some(s) => bad(
            "link",
            p,
            Outcome::Warn,
            format!("operstate {s}: this port carries no traffic"),
            format!("check the cable, transceiver and switch port of {pf}; `ip link set {pf} up` if it was set down"),
        ),
    });

    // ---- VFs bound back (the late stage).
    out.push(judge_vfs_bound(o));
    out
}

fn judge_rep_offload(pf: &IfName, reps: &[PortObs]) -> Finding {
    let p = Some(pf);
    let off: Vec<&PortObs> = reps
        .iter()
        .filter(|r| matches!(&r.offload, Ok(f) if !f.active))
        .collect();
    let unknown: Vec<String> = reps
        .iter()
        .filter_map(|r| {
            r.offload
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", r.label()))
        })
        .collect();
    if !off.is_empty() {
        let names: Vec<String> = off.iter().map(|r| r.label()).collect();
        let fixable: Vec<String> = off
            .iter()
            .filter(|r| matches!(&r.offload, Ok(f) if f.changeable))
            .map(|r| format!("ethtool -K {} hw-tc-offload on", r.name))
            .collect();
        let hint = if fixable.is_empty() {
            "hw-tc-offload is [fixed] off on these representors: check the driver".to_string()
        } else {
            fixable.join("; ")
        };
        return bad(
            "rep-offload",
            p,
            Outcome::Fail,
            format!(
                "hw-tc-offload off on {} of {} representors: {}",
                off.len(),
                reps.len(),
                names.join(", ")
            ),
            hint,
        );
    }
    if !unknown.is_empty() {
        return bad(
            "rep-offload",
            p,
            Outcome::Warn,
            format!(
                "hw-tc-offload not observable on {} of {} representors ({})",
                unknown.len(),
                reps.len(),
                unknown[0]
            ),
            "check by hand: ethtool -k <representor> | grep hw-tc-offload",
        );
    }
    pass(
        "rep-offload",
        p,
        format!("hw-tc-offload on on all {} representors", reps.len()),
    )
}

/// (outcome, detail, the count to set when it is wrong).
fn channels_verdict(ch: &Channels, want: u32) -> (Outcome, String, Option<u32>) {
    let Some(max) = ch.combined_max.filter(|m| *m > 0) else {
        return (
            Outcome::Skip,
            "no combined channels on this device".into(),
            None,
        );
    };
    let target = want.min(max);
    let cur = ch
        .combined
        .map(|c| c.to_string())
        .unwrap_or_else(|| "none".into());
    if ch.combined == Some(target) {
        if want > max {
            (
                Outcome::Pass,
                format!("{target} combined channels: the maximum ({want} configured)"),
                None,
            )
        } else {
            (
                Outcome::Pass,
                format!("{target} combined channels, as configured"),
                None,
            )
        }
    } else {
        (
            Outcome::Warn,
            format!("{cur} combined channels, {want} configured (maximum {max})"),
            Some(target),
        )
    }
}

fn judge_rep_channels(pf: &IfName, reps: &[PortObs], want: u32) -> Finding {
    let p = Some(pf);
    let mut wrong = vec![];
    let mut fixes = vec![];
    let mut unknown = 0;
    let mut clamped = None;
    for r in reps {
        match &r.channels {
            Ok(ch) => {
                let (o, detail, fix) = channels_verdict(ch, want);
                if o == Outcome::Warn {
                    wrong.push(format!("{}: {detail}", r.label()));
                }
                if let Some(t) = fix {
                    fixes.push(format!("ethtool -L {} combined {t}", r.name));
                }
                if o == Outcome::Pass && ch.combined_max.is_some_and(|m| m < want) {
                    clamped = ch.combined_max;
                }
            }
            Err(_) => unknown += 1,
        }
    }
    if !wrong.is_empty() {
        return bad(
            "rep-channels",
            p,
            Outcome::Warn,
            format!(
                "{} of {} representors: {}",
                wrong.len(),
                reps.len(),
                wrong.join("; ")
            ),
            fixes.join("; "),
        );
    }
    if unknown == reps.len() {
        let e = reps[0].channels.as_ref().err().cloned().unwrap_or_default();
        return bad(
            "rep-channels",
            p,
            Outcome::Warn,
            format!("channels not observable: {e}"),
            "check by hand: ethtool -l <representor>",
        );
    }
    let mut d = format!(
        "{want} combined channels on {} representors",
        reps.len() - unknown
    );
    if let Some(m) = clamped {
        d = format!(
            "{m} combined channels (the maximum; {want} configured) on {} representors",
            reps.len() - unknown
        );
    }
    if unknown > 0 {
        d.push_str(&format!("; {unknown} not observable"));
    }
    pass("rep-channels", p, d)
}

fn judge_vfs_bound(o: &PfObs) -> Finding {
    let p = Some(&o.name);
    let vfs = match &o.vfs {
        Err(e) => {
            return bad(
                "vfs-bound",
                p,
                Outcome::Warn,
                format!("cannot list VFs: {e}"),
                "ls -l /sys/class/net/<pf>/device/virtfn*",
            )
        }
        Ok(v) => v,
    };
    if vfs.is_empty() {
        return skip(
            "vfs-bound",
            p,
            match o.numvfs {
                Ok(Some(n)) if n > 0 => {
                    format!("{n} VFs but no VF devices on this bus: nothing to bind")
                }
                _ => "no VFs".into(),
            },
        );
    }
    let unbound: Vec<&VfObs> = vfs.iter().filter(|v| v.driver.is_none()).collect();
    let mut drivers: std::collections::BTreeMap<&str, usize> = Default::default();
    for v in vfs {
        if let Some(d) = &v.driver {
            *drivers.entry(d.as_str()).or_default() += 1;
        }
    }
    let by_driver = drivers
        .iter()
        .map(|(d, n)| format!("{d}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if unbound.is_empty() {
        return pass(
            "vfs-bound",
            p,
            format!("{}/{} VFs bound ({by_driver})", vfs.len(), vfs.len()),
        );
    }
    let list: Vec<String> = unbound
        .iter()
        .map(|v| format!("VF {} ({})", v.index, v.addr))
        .collect();
    bad(
        "vfs-bound",
        p,
        Outcome::Fail,
        format!("{}/{} VFs bound; no driver on {}", vfs.len() - unbound.len(), vfs.len(), list.join(", ")),
        format!(
            "the late stage binds them once the bond is valid and the LAG active: see `systemctl status {0}` and `journalctl -b -u {0}`, then `systemctl restart {0}`",
            late_unit(&o.name)
        ),
    )
}

// ------------------------------------------------------------------------------------------
// Judging the bond and the LAG

/// Bond membership of each PF, and (once per bond) its mode, members and upper device.
pub fn judge_bond(lag: &Lag, pfs: &[&PfObs], bonds: &[BondObs]) -> Vec<Finding> {
    let mut out = vec![];
    if lag.pfs.len() < 2 {
        for o in pfs {
            out.push(skip(
                "bond",
                Some(&o.name),
                "one PF configured: no bond expected",
            ));
        }
        return out;
    }
    let want: Vec<&str> = lag.pfs.iter().map(IfName::as_str).collect();
    for o in pfs.iter().filter(|o| o.missing.is_none()) {
        let p = Some(&o.name);
        out.push(match &o.master {
            None => bad(
                "bond",
                p,
                Outcome::Fail,
                format!("{} is not enslaved to a bond", o.name),
                format!("add {} to the bond with {} in the network configuration (both ports of the NIC, nothing else); the late stage binds the VFs once it is", o.name, want.join(" and ")),
            ),
            Some(m) => match bonds.iter().find(|b| b.name == *m) {
                Some(b) if b.mode.is_some() => pass("bond", p, format!("enslaved to {m}")),
                _ => bad(
                    "bond",
                    p,
                    Outcome::Fail,
                    format!("{} is enslaved to {m}, which is not a bond", o.name),
                    format!("make {} a member of a bond (not of a bridge or Open vSwitch directly); put the bond into the bridge", o.name),
                ),
            },
        });
    }
    let mut seen: Vec<&str> = vec![];
    for o in pfs {
        let Some(m) = &o.master else { continue };
        if seen.contains(&m.as_str()) {
            continue;
        }
        seen.push(m);
        let Some(b) = bonds.iter().find(|b| b.name == *m) else {
            continue;
        };
        let Some(mode) = &b.mode else { continue };
        let bn = IfName::new(&b.name).ok();
        let p = bn.as_ref();
        out.push(if LAG_BOND_MODES.contains(&mode.as_str()) {
            pass("bond-mode", p, mode.clone())
        } else {
            bad(
                "bond-mode",
                p,
                Outcome::Fail,
                format!("{mode}: mlx5 offloads only active-backup, balance-xor and 802.3ad"),
                format!("set the mode of {} to 802.3ad (LACP, with the switch), balance-xor or active-backup", b.name),
            )
        });
        let extra: Vec<&str> = b
            .slaves
            .iter()
            .map(String::as_str)
            .filter(|s| !want.contains(s))
            .collect();
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|w| !b.slaves.iter().any(|s| s == w))
            .collect();
        out.push(if extra.is_empty() && missing.is_empty() {
            pass("bond-members", p, format!("exactly {}", want.join(" and ")))
        } else {
            let mut why = vec![];
            if !extra.is_empty() {
                why.push(format!("also has {}", extra.join(", ")));
            }
            if !missing.is_empty() {
                why.push(format!("lacks {}", missing.join(", ")));
            }
            let mut fix = vec![];
            if !extra.is_empty() {
                fix.push(format!("remove {} from {}", extra.join(", "), b.name));
            }
            if !missing.is_empty() {
                fix.push(format!("add {} to {}", missing.join(", "), b.name));
            }
            bad(
                "bond-members",
                p,
                Outcome::Fail,
                format!(
                    "{} ({}): VF-LAG offloads a bond of exactly the two ports of one NIC",
                    why.join("; "),
                    b.slaves.join(" ")
                ),
                format!("{} in the network configuration", fix.join(" and ")),
            )
        });
        out.push(match &b.upper {
            Some(Upper::Bridge(br)) => bad(
                "bond-bridge",
                p,
                Outcome::Warn,
                format!("Linux bridge {br} is attached directly to {}", b.name),
                format!("attach no Linux bridge to {} itself: use tagged VLAN interfaces of the bond (only tagged VLANs then) or the Open vSwitch bridge", b.name),
            ),
            Some(Upper::Ovs(o)) => pass("bond-bridge", p, format!("a port of Open vSwitch ({o}), no Linux bridge")),
            Some(Upper::Other(o)) => pass("bond-bridge", p, format!("no Linux bridge (master {o})")),
            None => pass("bond-bridge", p, "no Linux bridge attached (and not a port of Open vSwitch)"),
        });
    }
    out
}

/// LAG activation for one PF: debugfs (live) where present, else this boot's kernel log.
pub fn judge_lag(lag: &Lag, o: &PfObs, kmsg: &Seen<LagReport>) -> Finding {
    let p = Some(&o.name);
    if o.missing.is_some() {
        return skip("lag", p, "PF missing");
    }
    if lag.eswitch == ConfEswitch::Legacy {
        return skip(
            "lag",
            p,
            "legacy eswitch configured: VF-LAG is not expected",
        );
    }
    if lag.pfs.len() < 2 {
        return skip("lag", p, "one PF configured: no LAG expected");
    }
    // The mlx5 debugfs LAG files, where the device has them, are the driver's own word.
    let debugfs_seen = matches!(o.debugfs, Ok(Some(_)));
    let dev_name = o.handle.split_once('/').map(|(_, d)| d).unwrap_or_default();
    let pci = match &o.pci {
        Some(pci) => pci.as_str(),
        None if debugfs_seen => dev_name,
        None => {
            return skip(
                "lag",
                p,
                format!("not observable on this device ({})", o.handle),
            )
        }
    };
    if !debugfs_seen && o.driver.as_deref() != Some("mlx5_core") {
        return skip(
            "lag",
            p,
            format!(
                "not observable on this device (driver {})",
                o.driver.as_deref().unwrap_or("none")
            ),
        );
    }
    let journal = "dmesg | grep -i 'mlx5.*lag'";
    let generic_fix = format!(
        "the LAG activates when both PFs are in switchdev mode and in one bond (mode active-backup, balance-xor or 802.3ad) with nothing else, and at most {LAG_MAX_VFS} VFs each: fix the failing rows above; details: {journal}"
    );
    // The kernel log's latest word, if any, for this NIC.
    let logged = kmsg.as_ref().ok().and_then(|r| r.for_pf(pci));
    let log_failure = |r: &LagReport| -> Option<(String, &'static str)> {
        if let Some(d) = r.for_pf(pci) {
            if let LagState::Failed { reason, .. } = &d.state {
                return Some((format!("{reason:?}"), reason.hint()));
            }
        }
        r.unattributed.iter().rev().find_map(|e| match &e.kind {
            kernlog::LagEventKind::Failure { reason } => {
                Some((format!("{reason:?}"), reason.hint()))
            }
            _ => None,
        })
    };
    match &o.debugfs {
        Ok(Some(d)) => {
            let members = if d.members.is_empty() {
                String::new()
            } else {
                format!(", members {}", d.members.join(" "))
            };
            let extra = [
                d.port_sel_mode
                    .as_ref()
                    .map(|m| format!("port_sel_mode {m}")),
                d.shared_fdb
                    .map(|s| format!("shared_fdb {}", if s { "on" } else { "off" })),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(", {}", extra.join(", "))
            };
            if !d.active {
                let (why, hint) = match kmsg.as_ref().ok().and_then(log_failure) {
                    Some((w, h)) => (format!("; kernel log: {w}"), format!("{h}; {generic_fix}")),
                    None => (String::new(), generic_fix.clone()),
                };
                return bad(
                    "lag",
                    p,
                    Outcome::Fail,
                    format!("not active (debugfs lag/state: disabled){why}"),
                    hint,
                );
            }
            match d.lag_type.as_deref() {
                Some("switchdev") | None => pass(
                    "lag",
                    p,
                    format!("active (debugfs), type {}{extra}{members}", d.lag_type.as_deref().unwrap_or("not shown")),
                ),
                Some("roce") => bad(
                    "lag",
                    p,
                    Outcome::Fail,
                    format!("a RoCE LAG is active, not VF-LAG (debugfs lag/type roce){members}: the PFs were bonded while the eswitch was legacy"),
                    format!("the eswitch must be switchdev before the PFs join the bond: see `journalctl -b -u {}` and reboot", early_unit(&o.name)),
                ),
                Some(t) => bad(
                    "lag",
                    p,
                    Outcome::Warn,
                    format!("active (debugfs), type {t}{extra}{members}: not a switchdev VF-LAG"),
                    generic_fix,
                ),
            }
        }
        other => {
            let debugfs_note = match other {
                Err(e) => format!("{e}; "),
                _ => String::new(),
            };
            let report = match kmsg {
                Ok(r) => r,
                Err(e) => {
                    return bad("lag", p, Outcome::Warn, format!("not observable: {debugfs_note}no debugfs lag/state, kernel log unreadable ({e})"), "run as root; mount debugfs (mount -t debugfs none /sys/kernel/debug) for the live lag/state");
                }
            };
            let stale = "kernel log of this boot; newer kernels log nothing on teardown, mount debugfs for the live state";
            match logged.map(|d| &d.state) {
                Some(LagState::Active { ports, active_ports, mode, remaps, .. }) => {
                    let map = if ports.is_empty() {
                        active_ports.as_ref().map(|a| format!("active ports {a:?}")).unwrap_or_default()
                    } else {
                        ports.iter().map(|m| format!("port {}:{}", m.port, m.to)).collect::<Vec<_>>().join(" ")
                    };
                    let mode = mode.as_ref().map(|m| format!(", mode {m}")).unwrap_or_default();
                    let d = format!("active: {map}{mode}, {remaps} remaps ({debugfs_note}{stale})");
                    // The log's latest word is a failed remap: the map above may be stale.
                    let modfail = logged.and_then(|l| match &l.last_event.kind {
                        kernlog::LagEventKind::ModifyFailed { code } => Some(*code),
                        _ => None,
                    });
                    match &o.eswitch {
                        _ if modfail.is_some() => bad(
                            "lag",
                            p,
                            Outcome::Warn,
                            format!("{d}; the last failover remap failed (Failed to modify LAG ({}))", modfail.unwrap_or_default()),
                            "traffic may still be mapped to a port that went down: check both ports' links; the firmware refused the remap (see dmesg)",
                        ),
                        Ok((EswitchMode::Switchdev, _)) => pass("lag", p, d),
                        _ => bad("lag", p, Outcome::Warn, format!("{d}; the eswitch is not seen in switchdev mode, so this may be a RoCE LAG"), generic_fix),
                    }
                }
                Some(LagState::Failed { reason, .. }) => bad(
                    "lag",
                    p,
                    Outcome::Fail,
                    format!("failed: {reason:?} ({stale})"),
                    format!("{}; {generic_fix}", reason.hint()),
                ),
                None => match log_failure(report) {
                    Some((w, h)) => bad("lag", p, Outcome::Fail, format!("refused: {w} (kernel log of this boot)"), format!("{h}; {generic_fix}")),
                    None => bad(
                        "lag",
                        p,
                        Outcome::Warn,
                        format!("not seen: {debugfs_note}no debugfs lag/state and no LAG lines in this boot's kernel log"),
                        format!("mount debugfs (mount -t debugfs none /sys/kernel/debug) to read lag/state; {generic_fix}"),
                    ),
                },
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Judging Open vSwitch

/// Port names whose offloaded flows are counted.
#[derive(Debug, Clone, Default)]
pub struct OvsPorts {
    pub bonds: Vec<String>,
    pub representors: Vec<String>,
}

/// `want_offload`: the config asks for hw-offload, or a LAG is switchdev (VF-LAG without OVS
/// offload is degraded).
pub fn judge_ovs(
    ovs: &OvsObs,
    want_offload: bool,
    ports: &OvsPorts,
    now: SystemTime,
) -> Vec<Finding> {
    let st = &ovs.status;
    let sock = st.db_sock.display().to_string();
    let mut out = vec![];
    if !st.present {
        out.push(if want_offload {
            bad(
                "ovs",
                None,
                Outcome::Warn,
                format!("Open vSwitch not found ({sock} absent or not listening)"),
                "start Open vSwitch (Kolla: the openvswitch_db and openvswitch_vswitchd containers), or set db-socket under [ovs] in the config",
            )
        } else {
            skip("ovs", None, format!("Open vSwitch not found ({sock})"))
        });
        return out;
    }
    // `dpctl/dump-flows` on a daemon without any bridge answers with an error: a state.
    let no_datapath = |e: &String| e.contains("no datapaths exist");
    let errors: Vec<String> = st
        .errors
        .iter()
        .filter(|e| !no_datapath(e))
        .map(|e| e.trim().replace('\n', " / "))
        .collect();
    let has_datapath = !st.errors.iter().any(no_datapath);
    out.push(if errors.is_empty() {
        pass("ovs", None, format!("database {sock}{}", if st.vswitchd_version.is_some() { ", ovs-vswitchd answering" } else { ", ovs-vswitchd not found" }))
    } else {
        bad("ovs", None, Outcome::Warn, format!("Open vSwitch answered with errors: {}", errors.join("; ")), "check that ovsdb-server and ovs-vswitchd are running (Kolla: docker ps | grep openvswitch)")
    });
    let src = match (&st.row, &st.vswitchd_version) {
        (Some(r), _) if r.version().is_some() => "ovs_version in the database",
        (_, Some(_)) => "ovs-vswitchd",
        _ => "",
    };
    out.push(match st.version {
        Some(v) if v.is_supported() => {
            pass("ovs-version", None, format!("Open vSwitch {v} ({src})"))
        }
        Some(v) => bad(
            "ovs-version",
            None,
            if want_offload {
                Outcome::Fail
            } else {
                Outcome::Warn
            },
            format!(
                "Open vSwitch {v} ({src}): VF-LAG offload needs {} or later",
                ovsdb::MIN_OVS_VERSION
            ),
            "upgrade Open vSwitch to 2.12 or later (Kolla: the Train release or later)",
        ),
        None => bad(
            "ovs-version",
            None,
            Outcome::Warn,
            "Open vSwitch version unknown (not in the database, ovs-vswitchd not answering)",
            "check that ovs-vswitchd is running",
        ),
    });
    let enable = "run `vflag ovs-offload enable` (sets other_config:hw-offload=true), then restart ovs-vswitchd (Kolla: docker restart openvswitch_vswitchd)";
    out.push(match st.hw_offload {
        Some(true) => pass("ovs-hw-offload", None, "other_config:hw-offload=true"),
        Some(false) if want_offload => bad("ovs-hw-offload", None, Outcome::Fail, "other_config:hw-offload is not true: flows are not offloaded, VF-LAG traffic takes the slow path", enable),
        Some(false) => bad("ovs-hw-offload", None, Outcome::Warn, "other_config:hw-offload is not true (no switchdev LAG configured)", enable),
        None => bad("ovs-hw-offload", None, Outcome::Warn, "other_config:hw-offload not readable", "check the Open vSwitch database (see the ovs row)"),
    });
    out.push(match &st.offloaded_flows {
        None if !has_datapath && st.vswitchd_version.is_some() => bad(
            "ovs-flows",
            None,
            Outcome::Warn,
            "ovs-vswitchd has no datapath: no Open vSwitch bridge exists",
            "put the bond into an Open vSwitch bridge (Kolla/Neutron: the provider bridge, e.g. br-ex); offloaded flows need one",
        ),
        None => bad("ovs-flows", None, Outcome::Warn, "offloaded flows unknown: ovs-vswitchd not reachable", "check that ovs-vswitchd is running and its control socket is next to the database socket"),
        Some(flows) => {
            let count = |names: &[String]| -> (usize, Vec<String>) {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let m = ovsdb::count_flows_by_in_port(flows, &refs);
                (m.values().sum(), m.iter().filter(|(_, n)| **n > 0).map(|(p, n)| format!("{p}: {n}")).collect())
            };
            let (nb, lb) = count(&ports.bonds);
            let (nr, lr) = count(&ports.representors);
            let mut d = format!("{} offloaded flows; in on the bond: {nb}", flows.len());
            if !lb.is_empty() {
                d.push_str(&format!(" ({})", lb.join(", ")));
            }
            d.push_str(&format!("; in on representors: {nr}"));
            if !lr.is_empty() {
                d.push_str(&format!(" ({})", lr.join(", ")));
            }
            if nb + nr == 0 {
                d.push_str(" (flows appear once VMs send traffic on VF-LAG ports)");
            }
            pass("ovs-flows", None, d)
        }
    });
    out.push(match &ovs.log {
        Err(e) => bad("ovs-errors", None, Outcome::Warn, format!("cannot read the ovs-vswitchd log: {e}"), "run as root"),
        Ok(None) => skip("ovs-errors", None, format!("no ovs-vswitchd log at {}", OVS_LOGS.join(" or "))),
        Ok(Some((path, errs))) => {
            let recent: Vec<&OffloadError> = errs
                .iter()
                .filter(|e| match e.timestamp.as_deref().and_then(parse_ovs_time) {
                    Some(t) => now.duration_since(t).map(|age| age <= RECENT).unwrap_or(true),
                    None => true, // no timestamp (syslog form): cannot tell, count it
                })
                .collect();
            if recent.is_empty() {
                pass("ovs-errors", None, format!("no \"failed to offload flow\" in the last {} min of {} (tail)", RECENT.as_secs() / 60, path.display()))
            } else {
                let last = recent[recent.len() - 1];
                let mut on: Vec<&str> = recent.iter().map(|e| e.port.as_str()).collect();
                on.sort();
                on.dedup();
                let lag_port = on.iter().any(|p| ports.bonds.iter().chain(&ports.representors).any(|b| b == p));
                bad(
                    "ovs-errors",
                    None,
                    if lag_port { Outcome::Fail } else { Outcome::Warn },
                    format!(
                        "{} \"failed to offload flow\" errors in the last {} min of {} (ports {}); last: {}: {}",
                        recent.len(),
                        RECENT.as_secs() / 60,
                        path.display(),
                        on.join(", "),
                        last.reason,
                        last.port
                    ),
                    "offload needs hw-tc-offload on the bond's PFs and the representors, an active switchdev LAG, and hw-offload=true in a restarted ovs-vswitchd: fix the failing rows; `Operation not supported` on the bond usually means the LAG is not active",
                )
            }
        }
    });
    out
}

/// `2020-03-19T11:42:17.028Z` (OVS log time, UTC) as a time.
pub fn parse_ovs_time(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), 1970-01-01 = 0.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    let ms: u64 = frac.get(..3.min(frac.len()))?.parse().ok()?;
    let ms = ms * 10u64.pow(3 - 3.min(frac.len()) as u32);
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
}

// ------------------------------------------------------------------------------------------
// Entry points

/// `vflag status [pf...]`: findings for the given PFs (empty = every configured PF), then the
/// host-wide Open vSwitch checks.
pub fn collect(root: &Root, loaded: &Loaded, pfs: &[IfName]) -> Vec<Finding> {
    collect_with(root, loaded, pfs, &Options::for_root(root))
}

pub fn collect_with(root: &Root, loaded: &Loaded, pfs: &[IfName], opt: &Options) -> Vec<Finding> {
    let mut out = vec![];
    // One config row at most: Prometheus must not see the same (check, pf) twice.
    let errors = loaded.errors().count();
    if let Some(e) = loaded.errors().next() {
        out.push(bad(
            "config",
            None,
            Outcome::Fail,
            format!(
                "{errors} configuration error(s), first: {e}{}",
                if loaded.disabled_by_cmdline {
                    "; vflag=0 on the kernel command line"
                } else {
                    ""
                }
            ),
            "fix the configuration (`vflag plan` lists every problem)",
        ));
    } else if loaded.disabled_by_cmdline {
        out.push(skip(
            "config",
            None,
            "vflag is disabled for this boot (vflag=0 on the kernel command line)",
        ));
    } else if loaded.plan.lags.is_empty() {
        out.push(skip(
            "config",
            None,
            "no LAG configured (/etc/vflag/vflag.conf or /etc/sysconfig/sriov)",
        ));
    }
    for p in pfs {
        if loaded.plan.lag_of(p).is_none() {
            out.push(bad(
                "present",
                Some(p),
                Outcome::Fail,
                format!("{p} is not a PF of any configured LAG"),
                "name a configured PF (`vflag plan`)",
            ));
        }
    }
    let cmdline = crate::cmdline::Cmdline::read(root);
    let mut kernel = Kernel::new(opt.netlink);
    let mut kmsg: Option<Seen<LagReport>> = None;
    let mut ports = OvsPorts::default();
    let mut want_offload = loaded.ovs.hw_offload;
    // A multi-NIC SRIOV_PFS is judged per NIC, as its stages run it.
    let (plan, lone) = crate::pairing::split(root, &loaded.plan);
    for (p, why) in lone
        .iter()
        .filter(|(p, _)| pfs.is_empty() || pfs.contains(p))
    {
        out.push(checks::unpaired(p, why));
    }
    for lag in &plan.lags {
        let chosen: Vec<&IfName> = lag
            .pfs
            .iter()
            .filter(|p| pfs.is_empty() || pfs.contains(p))
            .collect();
        if chosen.is_empty() {
            continue;
        }
        want_offload |= lag.eswitch == ConfEswitch::Switchdev;
        let obs: Vec<PfObs> = chosen
            .iter()
            .map(|p| observe_pf(root, lag, p, &mut kernel))
            .collect();
        let mut bonds: Vec<BondObs> = vec![];
        for o in &obs {
            if let Some(m) = &o.master {
                if !bonds.iter().any(|b| b.name == *m) {
                    bonds.push(observe_bond(root, m));
                }
            }
        }
        for b in bonds.iter().filter(|b| b.mode.is_some()) {
            ports.bonds.push(b.name.clone());
        }
        let need_kmsg = lag.eswitch == ConfEswitch::Switchdev
            && obs.iter().any(|o| {
                o.driver.as_deref() == Some("mlx5_core") && !matches!(o.debugfs, Ok(Some(_)))
            });
        if need_kmsg && kmsg.is_none() {
            kmsg = Some(kernlog::kmsg_lag_report(root).map_err(|e| format!("/dev/kmsg: {e}")));
        }
        let no_kmsg: Seen<LagReport> = Err("not read".into());
        for o in &obs {
            out.extend(judge_pf(lag, o));
            if o.missing.is_none() {
                out.push(judge_lag(lag, o, kmsg.as_ref().unwrap_or(&no_kmsg)));
            }
            if let Ok((reps, _)) = &o.reps {
                ports
                    .representors
                    .extend(reps.iter().map(|r| r.name.clone()));
            }
        }
        let refs: Vec<&PfObs> = obs.iter().collect();
        out.extend(judge_bond(lag, &refs, &bonds));
        // The pre-flight checks that stop an early stage (IOMMU, firmware, NIC): name the cause
        // here too, not only its effect (no VFs). Passes stay out of the table.
        for p in chosen
            .iter()
            .filter(|p| obs.iter().any(|o| o.name == ***p && o.missing.is_none()))
        {
            for f in checks::for_pf(root, &cmdline, lag, p) {
                let failed = matches!(f.outcome, Outcome::Fail | Outcome::Warn);
                if failed && f.check != "present" && !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    let ovs = observe_ovs(root, &loaded.ovs.db_socket, opt.ovs_timeout);
    out.extend(judge_ovs(&ovs, want_offload, &ports, opt.now));
    out
}

/// `vflag ovs-offload enable`: set `other_config:hw-offload=true` through OVSDB at the
/// configured database socket. `Ok(true)` when it changed (see [`ovs_offload_message`]).
pub fn ovs_offload_enable(root: &Root, loaded: &Loaded) -> Result<bool, OvsError> {
    let path = root.path(&loaded.ovs.db_socket);
    let mut c = OvsdbClient::connect(&path, ovsdb::DEFAULT_TIMEOUT)?;
    let changed = c.enable_hw_offload()?;
    tracing::info!(db = %path.display(), changed, "other_config:hw-offload=true");
    Ok(changed)
}

/// [`ovs_offload_enable`], tried again while Open vSwitch is not there yet or not ready (no
/// socket, connection refused, no answer, database not initialised) until `wait` has passed:
/// the socket can appear before ovsdb-server answers or before its `Open_vSwitch` row exists.
pub fn ovs_offload_enable_wait(
    root: &Root,
    loaded: &Loaded,
    wait: Duration,
) -> Result<bool, OvsError> {
    let end = Instant::now() + wait;
    let mut said = false;
    loop {
        match ovs_offload_enable(root, loaded) {
            Err(e) if ovs_not_ready(&e) && Instant::now() < end => {
                if !said {
                    tracing::info!("waiting up to {wait:?} for Open vSwitch: {e}");
                    said = true;
                }
                let left = end.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(500)));
            }
            r => return r,
        }
    }
}

/// States that end by themselves while Open vSwitch starts.
fn ovs_not_ready(e: &OvsError) -> bool {
    e.is_absent() || matches!(e, OvsError::NoRow(_) | OvsError::Timeout(..))
}

/// What to tell the operator after [`ovs_offload_enable`].
pub fn ovs_offload_message(changed: bool) -> String {
    if changed {
        "hw-offload set (other_config:hw-offload=true); restart ovs-vswitchd for it to take effect (Kolla: docker restart openvswitch_vswitchd; elsewhere: systemctl restart openvswitch-switch). vflag does not restart it (that interrupts the host's Open vSwitch traffic) and cannot tell whether the running ovs-vswitchd has applied it.".into()
    } else {
        "other_config:hw-offload is already true; nothing changed. If ovs-vswitchd was started before it was set, restart it (Kolla: docker restart openvswitch_vswitchd).".into()
    }
}

/// Judging on fake sysfs trees (observed through the real sysfs readers) plus netlink answers
/// supplied as data. These prove vflag's verdicts and hints; they prove nothing about what a
/// real kernel answers over netlink (that is the VM test bed's job).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NetworkStack, Ovs};
    use crate::device::sysfs::testtree::Tree;

    const SW: &str = "b8599f0001020304";

    fn n(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }

    fn lag(eswitch: ConfEswitch) -> Lag {
        Lag {
            name: "bond0".into(),
            source: "/etc/vflag/vflag.conf".into(),
            pfs: vec![n("ens3f0"), n("ens3f1")],
            vfs: 2,
            pf_channels: Some(63),
            representor_channels: Some(18),
            eswitch,
            network_stack: NetworkStack::Auto,
            before: vec![],
            device_timeout: Duration::from_secs(30),
            lag_timeout: Duration::from_secs(30),
            setup_timeout_max: Duration::from_secs(300),
            flow_steering_mode: None,
            lag_port_select_mode: None,
            representor_names: false,
        }
    }

    fn loaded(l: Lag) -> Loaded {
        Loaded {
            plan: crate::config::Plan { lags: vec![l] },
            ovs: Ovs::default(),
            ..Loaded::default()
        }
    }

    /// Two mlx5 PFs of one NIC, 2 VFs each (bound to mlx5_core), 2 representors each, bonded
    /// in 802.3ad, LAG active in debugfs: the healthy state after both stages.
    fn healthy() -> Tree {
        let t = Tree::new();
        t.driver("pci", "mlx5_core");
        for (name, addr, idx, pfn) in [
            ("ens3f0", "0000:37:00.0", 4, 0),
            ("ens3f1", "0000:37:00.1", 5, 1),
        ] {
            let dev = t.pci_pf(name, addr, idx, Some(8), 2, Some("mlx5_core"));
            t.link(&format!("{dev}/driver"), "sys/bus/pci/drivers/mlx5_core");
            t.write(&format!("{dev}/net/{name}/operstate"), "up\n");
            for vf in 0..2 {
                t.representor(
                    &dev,
                    &format!("{name}r{vf}"),
                    20 + pfn * 10 + vf,
                    SW,
                    &format!("pf{pfn}vf{vf}"),
                );
            }
        }
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1"]);
        debugfs(&t, "0000:37:00.0", "active", Some("switchdev"));
        t
    }

    fn debugfs(t: &Tree, pci: &str, state: &str, ty: Option<&str>) {
        let d = format!("sys/kernel/debug/mlx5/{pci}/lag");
        t.write(&format!("{d}/state"), &format!("{state}\n"));
        if let Some(ty) = ty {
            t.write(&format!("{d}/type"), &format!("{ty}\n"));
            t.write(&format!("{d}/port_sel_mode"), "hash\n");
            t.write(&format!("{d}/flags"), "shared_fdb:on\n");
            t.write(&format!("{d}/members"), "0000:37:00.0\n0000:37:00.1\n");
        }
    }

    const ON: Feature = Feature {
        active: true,
        wanted: true,
        changeable: true,
    };
    const OFF: Feature = Feature {
        active: false,
        wanted: false,
        changeable: true,
    };

    fn ch(combined: u32, max: u32) -> Channels {
        Channels {
            combined: Some(combined),
            combined_max: Some(max),
        }
    }

    /// What devlink and ethtool would answer on the healthy host.
    fn netlink_healthy(o: &mut PfObs) {
        o.eswitch = Ok((EswitchMode::Switchdev, "devlink"));
        o.port.offload = Ok(ON);
        o.port.channels = Ok(ch(63, 63));
        if let Ok((reps, _)) = &mut o.reps {
            for r in reps {
                r.offload = Ok(ON);
                r.channels = Ok(ch(18, 64));
            }
        }
    }

    fn observe(t: &Tree, l: &Lag, pf: &str) -> PfObs {
        observe_pf(&t.root(), l, &n(pf), &mut Kernel::new(false))
    }

    fn all(t: &Tree, l: &Lag, kmsg: &Seen<LagReport>, tweak: impl Fn(&mut PfObs)) -> Vec<Finding> {
        let mut obs: Vec<PfObs> = l.pfs.iter().map(|p| observe(t, l, p.as_str())).collect();
        let mut out = vec![];
        for o in obs.iter_mut() {
            netlink_healthy(o);
            tweak(o);
            out.extend(judge_pf(l, o));
            out.push(judge_lag(l, o, kmsg));
        }
        let bonds: Vec<BondObs> = ["bond0"]
            .iter()
            .map(|b| observe_bond(&t.root(), b))
            .collect();
        let refs: Vec<&PfObs> = obs.iter().collect();
        out.extend(judge_bond(l, &refs, &bonds));
        out
    }

    fn get<'a>(f: &'a [Finding], check: &str, pf: &str) -> &'a Finding {
        f.iter()
            .find(|x| x.check == check && x.pf.as_ref().map(IfName::as_str).unwrap_or("") == pf)
            .unwrap_or_else(|| panic!("no {check} for {pf:?} in {f:#?}"))
    }

    fn no_kmsg() -> Seen<LagReport> {
        Err("not read".into())
    }

    fn kmsg(fixture: &str) -> Seen<LagReport> {
        Ok(kernlog::parse_lag(&fixture.lines().collect::<Vec<_>>()))
    }

    #[test]
    fn healthy_lag_passes_every_check() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let not_pass: Vec<&Finding> = f.iter().filter(|x| x.outcome != Outcome::Pass).collect();
        assert!(not_pass.is_empty(), "{not_pass:#?}");
        for pf in ["ens3f0", "ens3f1"] {
            for c in [
                "link",
                "vfs",
                "eswitch",
                "pf-offload",
                "representors",
                "rep-offload",
                "rep-channels",
                "pf-channels",
                "vfs-bound",
                "bond",
                "lag",
            ] {
                get(&f, c, pf);
            }
        }
        for c in ["bond-mode", "bond-members", "bond-bridge"] {
            get(&f, c, "bond0");
        }
        assert_eq!(
            f.iter().filter(|x| x.check == "bond-mode").count(),
            1,
            "once per bond"
        );
        assert!(
            get(&f, "lag", "ens3f1").detail.contains("type switchdev"),
            "{f:#?}"
        );
        assert!(get(&f, "representors", "ens3f0")
            .detail
            .starts_with("2 representors for 2 VFs (sysfs)"));
        assert!(get(&f, "rep-channels", "ens3f0")
            .detail
            .contains("18 combined"));
    }

    #[test]
    fn missing_vfs_fail_with_the_early_unit_in_the_hint() {
        let t = Tree::new();
        t.driver("pci", "mlx5_core");
        let dev = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        t.link(&format!("{dev}/driver"), "sys/bus/pci/drivers/mlx5_core");
        let l = lag(ConfEswitch::Switchdev);
        let mut o = observe(&t, &l, "ens3f0");
        netlink_healthy(&mut o);
        let f = judge_pf(&l, &o);
        let v = get(&f, "vfs", "ens3f0");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.detail, "0 VFs (sriov_numvfs), 2 configured");
        assert!(v
            .hint
            .as_deref()
            .unwrap()
            .contains("journalctl -b -u vflag@ens3f0.service"));
        // Representors are counted against the VFs that exist: none here, the vfs row fails.
        assert_eq!(get(&f, "representors", "ens3f0").outcome, Outcome::Skip);
        assert_eq!(get(&f, "vfs-bound", "ens3f0").outcome, Outcome::Skip);
        // No SR-IOV at all.
        std::fs::remove_file(t.p(&format!("{dev}/sriov_numvfs"))).unwrap();
        let o = observe(&t, &l, "ens3f0");
        let v = judge_pf(&l, &o);
        let v = get(&v, "vfs", "ens3f0");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.hint.as_deref().unwrap().contains("SRIOV_EN=1"), "{v:?}");
    }

    #[test]
    fn missing_pf_is_one_failure() {
        let t = Tree::new();
        let l = lag(ConfEswitch::Switchdev);
        let o = observe(&t, &l, "ens3f0");
        let f = judge_pf(&l, &o);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].check, "present");
        assert_eq!(f[0].outcome, Outcome::Fail);
        assert_eq!(judge_lag(&l, &o, &no_kmsg()).outcome, Outcome::Skip);
    }

    #[test]
    fn eswitch_mode_against_the_config() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |o| {
            o.eswitch = Ok((EswitchMode::Legacy, "devlink"))
        });
        let e = get(&f, "eswitch", "ens3f0");
        assert_eq!(e.outcome, Outcome::Fail);
        assert_eq!(
            e.detail,
            "legacy (devlink pci/0000:37:00.0), switchdev configured"
        );
        assert!(e
            .hint
            .as_deref()
            .unwrap()
            .contains("devlink dev eswitch set pci/0000:37:00.0 mode switchdev"));

        // No devlink at all: the error text, Fail for switchdev, Skip for legacy.
        let o = observe(&t, &l, "ens3f0");
        let e = judge_pf(&l, &o)
            .into_iter()
            .find(|x| x.check == "eswitch")
            .unwrap();
        assert_eq!(e.outcome, Outcome::Fail);
        assert!(e.detail.contains(NO_NETLINK), "{e:?}");
        let legacy = lag(ConfEswitch::Legacy);
        let o = observe(&t, &legacy, "ens3f0");
        let f = judge_pf(&legacy, &o);
        assert_eq!(get(&f, "eswitch", "ens3f0").outcome, Outcome::Skip);
        assert_eq!(get(&f, "representors", "ens3f0").outcome, Outcome::Skip);
        assert_eq!(judge_lag(&legacy, &o, &no_kmsg()).outcome, Outcome::Skip);

        // OFED's compat sysfs answers where devlink cannot.
        t.write("sys/class/net/ens3f0/compat/devlink/mode", "legacy\n");
        let o = observe(&t, &l, "ens3f0");
        assert_eq!(o.eswitch, Ok((EswitchMode::Legacy, "compat sysfs")));
        assert_eq!(
            get(&judge_pf(&l, &o), "eswitch", "ens3f0").outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn representor_offload_off_names_the_ones_off() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |o| {
            if o.name.as_str() == "ens3f0" {
                if let Ok((reps, _)) = &mut o.reps {
                    reps[1].offload = Ok(OFF);
                }
            }
        });
        let r = get(&f, "rep-offload", "ens3f0");
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.detail,
            "hw-tc-offload off on 1 of 2 representors: ens3f0r1 (VF 1)"
        );
        assert_eq!(
            r.hint.as_deref(),
            Some("ethtool -K ens3f0r1 hw-tc-offload on")
        );
        assert_eq!(get(&f, "rep-offload", "ens3f1").outcome, Outcome::Pass);

        // PF offload off: Fail for switchdev, with the ethtool fix.
        let f = all(&t, &l, &no_kmsg(), |o| o.port.offload = Ok(OFF));
        let p = get(&f, "pf-offload", "ens3f0");
        assert_eq!(p.outcome, Outcome::Fail);
        assert!(p
            .hint
            .as_deref()
            .unwrap()
            .starts_with("ethtool -K ens3f0 hw-tc-offload on"));

        // A missing representor is named.
        std::fs::remove_file(t.p("sys/class/net/ens3f1r0")).unwrap();
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let r = get(&f, "representors", "ens3f1");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.detail.ends_with("none for VF 0"), "{r:?}");
    }

    #[test]
    fn channels_clamped_to_the_maximum_pass_with_the_detail() {
        let (o, d, fix) = channels_verdict(&ch(8, 8), 18);
        assert_eq!((o, fix), (Outcome::Pass, None));
        assert_eq!(d, "8 combined channels: the maximum (18 configured)");
        let (o, d, fix) = channels_verdict(&ch(4, 8), 18);
        assert_eq!((o, fix), (Outcome::Warn, Some(8)));
        assert_eq!(d, "4 combined channels, 18 configured (maximum 8)");
        let (o, _, _) = channels_verdict(
            &Channels {
                combined: None,
                combined_max: None,
            },
            18,
        );
        assert_eq!(o, Outcome::Skip);

        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |o| {
            o.port.channels = Ok(ch(16, 63));
            if let Ok((reps, _)) = &mut o.reps {
                reps[0].channels = Ok(ch(1, 64));
            }
        });
        let p = get(&f, "pf-channels", "ens3f0");
        assert_eq!(p.outcome, Outcome::Warn);
        assert_eq!(p.hint.as_deref(), Some("ethtool -L ens3f0 combined 63"));
        let r = get(&f, "rep-channels", "ens3f0");
        assert_eq!(r.outcome, Outcome::Warn);
        assert_eq!(r.hint.as_deref(), Some("ethtool -L ens3f0r0 combined 18"));
    }

    #[test]
    fn pf_not_enslaved() {
        let t = healthy();
        t.bond("bond0", "802.3ad 4", &["ens3f1"]);
        std::fs::remove_file(t.p("sys/class/net/ens3f0/master")).unwrap();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let b = get(&f, "bond", "ens3f0");
        assert_eq!(b.outcome, Outcome::Fail);
        assert_eq!(b.detail, "ens3f0 is not enslaved to a bond");
        assert!(b
            .hint
            .as_deref()
            .unwrap()
            .contains("add ens3f0 to the bond with ens3f0 and ens3f1"));
        assert_eq!(get(&f, "bond", "ens3f1").outcome, Outcome::Pass);
        let m = get(&f, "bond-members", "bond0");
        assert_eq!(m.outcome, Outcome::Fail);
        assert!(m.detail.starts_with("lacks ens3f0"), "{m:?}");
        assert_eq!(
            m.hint.as_deref(),
            Some("add ens3f0 to bond0 in the network configuration")
        );
    }

    #[test]
    fn pf_enslaved_to_something_that_is_not_a_bond() {
        let t = healthy();
        t.netdev("br-ex", 90, None);
        t.link(
            "sys/class/net/ens3f0/master",
            "sys/devices/virtual/net/br-ex",
        );
        let l = lag(ConfEswitch::Switchdev);
        let mut o = observe(&t, &l, "ens3f0");
        netlink_healthy(&mut o);
        let bonds = vec![observe_bond(&t.root(), "br-ex")];
        let f = judge_bond(&l, &[&o], &bonds);
        let b = get(&f, "bond", "ens3f0");
        assert_eq!(b.outcome, Outcome::Fail);
        assert_eq!(b.detail, "ens3f0 is enslaved to br-ex, which is not a bond");
    }

    #[test]
    fn port_down_warns() {
        let t = healthy();
        t.write("sys/class/net/ens3f1/operstate", "down\n");
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let l = get(&f, "link", "ens3f1");
        assert_eq!(l.outcome, Outcome::Warn);
        assert!(l.detail.starts_with("operstate down"), "{l:?}");
        assert_eq!(get(&f, "link", "ens3f0").outcome, Outcome::Pass);
    }

    #[test]
    fn wrong_bond_mode() {
        let t = healthy();
        t.write(
            "sys/devices/virtual/net/bond0/bonding/mode",
            "balance-rr 0\n",
        );
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let m = get(&f, "bond-mode", "bond0");
        assert_eq!(m.outcome, Outcome::Fail);
        assert!(m.detail.starts_with("balance-rr:"), "{m:?}");
        assert!(m.hint.as_deref().unwrap().contains("802.3ad"));
        for mode in ["active-backup 1", "balance-xor 2"] {
            t.write("sys/devices/virtual/net/bond0/bonding/mode", mode);
            let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
            assert_eq!(
                get(&f, "bond-mode", "bond0").outcome,
                Outcome::Pass,
                "{mode}"
            );
        }
    }

    #[test]
    fn third_interface_in_the_bond() {
        let t = healthy();
        t.netdev("eno1", 2, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0", "ens3f1", "eno1"]);
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let m = get(&f, "bond-members", "bond0");
        assert_eq!(m.outcome, Outcome::Fail);
        assert!(
            m.detail.starts_with("also has eno1 (ens3f0 ens3f1 eno1)"),
            "{m:?}"
        );
        assert_eq!(
            m.hint.as_deref(),
            Some("remove eno1 from bond0 in the network configuration")
        );
    }

    #[test]
    fn bridge_on_the_bond_warns_ovs_does_not() {
        let t = healthy();
        t.netdev("br0", 91, None);
        t.write("sys/devices/virtual/net/br0/bridge/stp_state", "0\n");
        t.link(
            "sys/devices/virtual/net/bond0/master",
            "sys/devices/virtual/net/br0",
        );
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let b = get(&f, "bond-bridge", "bond0");
        assert_eq!(b.outcome, Outcome::Warn);
        assert_eq!(b.detail, "Linux bridge br0 is attached directly to bond0");
        assert!(b.hint.as_deref().unwrap().contains("tagged VLAN"));

        t.netdev("ovs-system", 92, None);
        t.link(
            "sys/devices/virtual/net/bond0/master",
            "sys/devices/virtual/net/ovs-system",
        );
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        assert_eq!(get(&f, "bond-bridge", "bond0").outcome, Outcome::Pass);
    }

    #[test]
    fn unbound_vfs_point_at_the_late_unit() {
        let t = healthy();
        std::fs::remove_file(t.p("sys/devices/pci0000:00/0000:37:00.3/driver")).unwrap();
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let b = get(&f, "vfs-bound", "ens3f0");
        assert_eq!(b.outcome, Outcome::Fail);
        assert_eq!(b.detail, "1/2 VFs bound; no driver on VF 1 (0000:37:00.3)");
        assert!(b
            .hint
            .as_deref()
            .unwrap()
            .contains("systemctl restart vflag-rebind@ens3f0.service"));
        assert_eq!(
            get(&f, "vfs-bound", "ens3f1").detail,
            "2/2 VFs bound (mlx5_core: 2)"
        );
    }

    #[test]
    fn debugfs_lag_active_inactive_and_roce() {
        let t = healthy();
        let l = lag(ConfEswitch::Switchdev);
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let a = get(&f, "lag", "ens3f0");
        assert_eq!(a.outcome, Outcome::Pass);
        assert_eq!(a.detail, "active (debugfs), type switchdev, port_sel_mode hash, shared_fdb on, members 0000:37:00.0 0000:37:00.1");

        debugfs(&t, "0000:37:00.0", "disabled", None);
        for x in ["type", "port_sel_mode", "flags", "members"] {
            std::fs::remove_file(t.p(&format!("sys/kernel/debug/mlx5/0000:37:00.0/lag/{x}")))
                .unwrap();
        }
        let f = all(
            &t,
            &l,
            &kmsg(include_str!("../tests/fixtures/status/kmsg-failed.txt")),
            |_| {},
        );
        let d = get(&f, "lag", "ens3f0");
        assert_eq!(d.outcome, Outcome::Fail);
        assert!(
            d.detail
                .starts_with("not active (debugfs lag/state: disabled); kernel log: ActivateVfLag"),
            "{d:?}"
        );
        assert!(
            d.hint.as_deref().unwrap().contains("VFs are unbound"),
            "{d:?}"
        );
        // ens3f1 has no debugfs files of its own: the pair's are used.
        assert_eq!(get(&f, "lag", "ens3f1").outcome, Outcome::Fail);

        debugfs(&t, "0000:37:00.0", "active", Some("roce"));
        let f = all(&t, &l, &no_kmsg(), |_| {});
        let r = get(&f, "lag", "ens3f0");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.detail.starts_with("a RoCE LAG is active, not VF-LAG"),
            "{r:?}"
        );
    }

    /// mlx5 names its debugfs directory after the device name; a device that has the LAG files
    /// is judged by them on any bus (the test bed's ConnectX model on netdevsim).
    #[test]
    fn debugfs_lag_of_a_non_pci_device() {
        let t = Tree::new();
        for (name, id) in [("eni10np1", 10), ("eni11np1", 11)] {
            let dev = format!("sys/devices/netdevsim{id}");
            t.write(&format!("{dev}/sriov_numvfs"), "2\n");
            t.link(&format!("{dev}/subsystem"), "sys/bus/netdevsim");
            t.netdev(name, id, Some(&dev));
        }
        t.bond("bond0", "active-backup 1", &["eni10np1", "eni11np1"]);
        let mut l = lag(ConfEswitch::Switchdev);
        l.pfs = vec![n("eni10np1"), n("eni11np1")];
        let judge = |pf: &str| judge_lag(&l, &observe(&t, &l, pf), &no_kmsg());
        assert_eq!(judge("eni10np1").outcome, Outcome::Skip);

        let d = "sys/kernel/debug/mlx5/netdevsim10/lag";
        t.write(&format!("{d}/state"), "disabled\n");
        let f = judge("eni11np1");
        assert_eq!(f.outcome, Outcome::Fail, "{f:?}");
        assert!(
            f.detail
                .starts_with("not active (debugfs lag/state: disabled)"),
            "{f:?}"
        );

        t.write(&format!("{d}/state"), "active\n");
        t.write(&format!("{d}/type"), "switchdev\n");
        t.write(&format!("{d}/members"), "netdevsim10\nnetdevsim11\n");
        let f = judge("eni10np1");
        assert_eq!(f.outcome, Outcome::Pass, "{f:?}");
        assert_eq!(
            f.detail,
            "active (debugfs), type switchdev, members netdevsim10 netdevsim11"
        );
    }

    #[test]
    fn kernel_log_when_debugfs_is_absent() {
        let t = healthy();
        std::fs::remove_dir_all(t.p("sys/kernel/debug")).unwrap();
        let l = lag(ConfEswitch::Switchdev);
        let active = kmsg(include_str!("../tests/fixtures/status/kmsg-active.txt"));
        let f = all(&t, &l, &active, |_| {});
        // ens3f1 (function 1) finds the NIC's lines logged by function 0.
        for pf in ["ens3f0", "ens3f1"] {
            let a = get(&f, "lag", pf);
            assert_eq!(a.outcome, Outcome::Pass, "{a:?}");
            assert!(
                a.detail
                    .starts_with("active: port 1:2 port 2:2, mode hash, 1 remaps"),
                "{a:?}"
            );
            assert!(a.detail.contains("newer kernels log nothing on teardown"));
        }
        // The same lines without switchdev seen: could be a RoCE LAG.
        let f = all(&t, &l, &active, |o| {
            o.eswitch = Err("devlink: unsupported".into())
        });
        assert_eq!(get(&f, "lag", "ens3f0").outcome, Outcome::Warn);

        let failed = kmsg(include_str!("../tests/fixtures/status/kmsg-failed.txt"));
        let f = all(&t, &l, &failed, |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Fail);
        assert!(x.detail.starts_with("failed: ActivateVfLag"), "{x:?}");
        assert!(
            x.hint
                .as_deref()
                .unwrap()
                .starts_with("firmware refused the LAG"),
            "{x:?}"
        );

        let modfail = kmsg(include_str!(
            "../tests/fixtures/status/kmsg-modify-failed.txt"
        ));
        let f = all(&t, &l, &modfail, |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Warn, "{x:?}");
        assert!(
            x.detail
                .ends_with("the last failover remap failed (Failed to modify LAG (-5))"),
            "{x:?}"
        );

        let none = kmsg(include_str!("../tests/fixtures/status/kmsg-no-lag.txt"));
        let f = all(&t, &l, &none, |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Warn);
        assert!(
            x.hint.as_deref().unwrap().contains("mount -t debugfs"),
            "{x:?}"
        );

        let f = all(&t, &l, &Err("/dev/kmsg: Permission denied".into()), |_| {});
        assert!(get(&f, "lag", "ens3f0")
            .detail
            .contains("kernel log unreadable (/dev/kmsg: Permission denied)"));
    }

    #[test]
    fn lag_not_observable_on_other_devices() {
        let t = healthy();
        t.driver("pci", "ice");
        t.link(
            "sys/devices/pci0000:00/0000:37:00.0/driver",
            "sys/bus/pci/drivers/ice",
        );
        // Only mlx5 creates mlx5/<device>/ in debugfs.
        std::fs::remove_dir_all(t.p("sys/kernel/debug")).unwrap();
        let f = all(&t, &lag(ConfEswitch::Switchdev), &no_kmsg(), |_| {});
        let x = get(&f, "lag", "ens3f0");
        assert_eq!(x.outcome, Outcome::Skip);
        assert_eq!(x.detail, "not observable on this device (driver ice)");
    }

    /// End to end through `collect_with` on a fake root: no netlink, no OVS, kmsg from a file.
    #[test]
    fn collect_on_a_fake_root_without_ovs() {
        let t = healthy();
        std::fs::remove_dir_all(t.p("sys/kernel/debug")).unwrap();
        t.write(
            "dev/kmsg",
            include_str!("../tests/fixtures/status/kmsg-active.txt"),
        );
        let opt = Options {
            netlink: false,
            ovs_timeout: OVS_TIMEOUT,
            now: SystemTime::now(),
        };
        let l = loaded(lag(ConfEswitch::Switchdev));
        let f = collect_with(&t.root(), &l, &[], &opt);
        assert_eq!(get(&f, "vfs", "ens3f1").outcome, Outcome::Pass);
        assert_eq!(
            get(&f, "eswitch", "ens3f0").outcome,
            Outcome::Fail,
            "devlink not asked under a test root"
        );
        assert_eq!(get(&f, "pf-offload", "ens3f0").outcome, Outcome::Warn);
        assert_eq!(get(&f, "bond-members", "bond0").outcome, Outcome::Pass);
        // kmsg was read from the root; without switchdev seen the log alone is only a Warn.
        assert!(get(&f, "lag", "ens3f0")
            .detail
            .starts_with("active: port 1:2 port 2:2"));
        let ovs: Vec<&Finding> = f.iter().filter(|x| x.check.starts_with("ovs")).collect();
        assert_eq!(ovs.len(), 1, "absent OVS is one row: {ovs:#?}");
        assert_eq!(ovs[0].outcome, Outcome::Warn);
        assert!(
            ovs[0].detail.contains("run/openvswitch/db.sock"),
            "{:?}",
            ovs[0]
        );

        // Each (check, interface) once: Prometheus refuses duplicate series.
        let mut keys: Vec<(&str, Option<&IfName>)> =
            f.iter().map(|x| (x.check, x.pf.as_ref())).collect();
        let len = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), len, "{f:#?}");
        let off = Loaded {
            disabled_by_cmdline: true,
            ..Loaded::default()
        };
        let c = collect_with(&t.root(), &off, &[], &opt);
        assert_eq!(
            c.iter().filter(|x| x.check == "config").count(),
            1,
            "{c:#?}"
        );

        // Only the PFs asked for; an unknown name is reported.
        let f = collect_with(&t.root(), &l, &[n("ens3f1"), n("eth7")], &opt);
        assert!(f
            .iter()
            .all(|x| x.pf.as_ref().map(IfName::as_str) != Some("ens3f0")));
        assert_eq!(get(&f, "present", "eth7").outcome, Outcome::Fail);

        // Legacy only, no hw-offload asked: absent OVS is a Skip.
        let f = collect_with(&t.root(), &loaded(lag(ConfEswitch::Legacy)), &[], &opt);
        assert_eq!(get(&f, "ovs", "").outcome, Outcome::Skip);
    }

    /// A multi-NIC SRIOV_PFS (ports listed interleaved) is judged per NIC: each bond against
    /// its own NIC's two ports; a PF with no partner is one failed row of its own.
    #[test]
    fn multi_nic_sysconfig_is_judged_per_nic() {
        let t = healthy();
        for (name, addr, idx) in [
            ("ens4f0", "0000:3b:00.0", 6),
            ("ens4f1", "0000:3b:00.1", 7),
            ("ens5f0", "0000:5e:00.0", 8),
        ] {
            t.pci_pf(name, addr, idx, Some(8), 2, None);
        }
        t.bond("bond1", "802.3ad 4", &["ens4f0", "ens4f1"]);
        let mut l = lag(ConfEswitch::Switchdev);
        l.pfs = ["ens3f0", "ens4f0", "ens3f1", "ens4f1", "ens5f0"]
            .map(n)
            .to_vec();
        let opt = Options {
            netlink: false,
            ovs_timeout: OVS_TIMEOUT,
            now: SystemTime::now(),
        };
        let f = collect_with(&t.root(), &loaded(l), &[], &opt);
        let b0 = get(&f, "bond-members", "bond0");
        assert_eq!(
            (b0.outcome, b0.detail.as_str()),
            (Outcome::Pass, "exactly ens3f0 and ens3f1")
        );
        let b1 = get(&f, "bond-members", "bond1");
        assert_eq!(
            (b1.outcome, b1.detail.as_str()),
            (Outcome::Pass, "exactly ens4f0 and ens4f1")
        );
        let lone = get(&f, "same-nic", "ens5f0");
        assert_eq!(lone.outcome, Outcome::Fail);
        assert!(
            lone.detail
                .starts_with("ens5f0: no other port of its NIC (0000:5e:00) is listed"),
            "{lone:?}"
        );
        assert!(
            f.iter()
                .all(|x| x.check != "same-nic" || x.pf == Some(n("ens5f0"))),
            "{f:#?}"
        );
    }

    fn ovs_obs(version: &str, hw: bool, flows: Option<&str>) -> OvsObs {
        let row = ovsdb::OpenVswitch {
            uuid: "u".into(),
            ovs_version: Some(version.into()),
            db_version: None,
            other_config: [("hw-offload".to_string(), hw.to_string())]
                .into_iter()
                .collect(),
        };
        OvsObs {
            status: OvsStatus {
                db_sock: "/run/openvswitch/db.sock".into(),
                present: true,
                version: row.version(),
                hw_offload: Some(row.hw_offload()),
                row: Some(row),
                schema_version: Some("8.3.1".into()),
                vswitchd_version: flows.map(|_| "ovs-vswitchd (Open vSwitch) 3.1.0".into()),
                offloaded_flows: flows.map(ovsdb::parse_dump_flows),
                errors: vec![],
            },
            log: Ok(None),
        }
    }

    fn at(s: &str) -> SystemTime {
        parse_ovs_time(s).unwrap()
    }

    #[test]
    fn ovs_version_offload_and_flows() {
        let ports = OvsPorts {
            bonds: vec!["bond0".into()],
            representors: vec!["eth9".into(), "eth10".into()],
        };
        let now = at("2020-03-19T12:00:00Z");
        let seed_flows = "in_port(bond0),eth(src=98:5d:82:b5:d2:e5,dst=fa:16:3e:44:44:71),eth_type(0x8100),vlan(vid=540,pcp=0),encap(eth_type(0x0800),ipv4(frag=no)), packets:29, bytes:2842, used:0.550s, actions:pop_vlan,eth9\nin_port(eth9),eth(src=fa:16:3e:44:44:71,dst=00:1c:73:00:00:99),eth_type(0x0800),ipv4(frag=no), packets:29, bytes:2958, used:0.550s, actions:push_vlan(vid=540,pcp=0),bond0\n";
        let f = judge_ovs(
            &ovs_obs("2.12.0", true, Some(seed_flows)),
            true,
            &ports,
            now,
        );
        for c in ["ovs", "ovs-version", "ovs-hw-offload", "ovs-flows"] {
            assert_eq!(get(&f, c, "").outcome, Outcome::Pass, "{c}: {f:#?}");
        }
        assert_eq!(
            get(&f, "ovs-flows", "").detail,
            "2 offloaded flows; in on the bond: 1 (bond0: 1); in on representors: 1 (eth9: 1)"
        );
        assert_eq!(get(&f, "ovs-errors", "").outcome, Outcome::Skip);

        // No flows yet is not a failure.
        let f = judge_ovs(&ovs_obs("3.1.0", true, Some("")), true, &ports, now);
        let x = get(&f, "ovs-flows", "");
        assert_eq!(x.outcome, Outcome::Pass);
        assert!(x.detail.contains("flows appear once VMs send traffic"));

        // Old release, offload off: failures when VF-LAG wants offload, warnings otherwise.
        let f = judge_ovs(&ovs_obs("2.11.1", false, None), true, &ports, now);
        assert_eq!(get(&f, "ovs-version", "").outcome, Outcome::Fail);
        let h = get(&f, "ovs-hw-offload", "");
        assert_eq!(h.outcome, Outcome::Fail);
        assert!(h
            .hint
            .as_deref()
            .unwrap()
            .contains("vflag ovs-offload enable"));
        assert!(h
            .hint
            .as_deref()
            .unwrap()
            .contains("docker restart openvswitch_vswitchd"));
        assert_eq!(
            get(&f, "ovs-flows", "").outcome,
            Outcome::Warn,
            "vswitchd unreachable"
        );
        let f = judge_ovs(&ovs_obs("2.11.1", false, None), false, &ports, now);
        assert_eq!(get(&f, "ovs-version", "").outcome, Outcome::Warn);
        assert_eq!(get(&f, "ovs-hw-offload", "").outcome, Outcome::Warn);
    }

    #[test]
    fn recent_offload_errors_from_the_kolla_log_tail() {
        let t = Tree::new();
        t.write(
            "var/log/kolla/openvswitch/ovs-vswitchd.log",
            include_str!("../tests/fixtures/status/ovs-vswitchd.log"),
        );
        let mut o = observe_ovs(
            &t.root(),
            Path::new("/run/openvswitch/db.sock"),
            OVS_TIMEOUT,
        );
        assert!(!o.status.present);
        let (path, errs) = o.log.clone().unwrap().unwrap();
        assert_eq!(path, Path::new(OVS_LOGS[0]));
        assert_eq!(errs.len(), 2);
        o.status = ovs_obs("3.1.0", true, Some("")).status;
        let ports = OvsPorts {
            bonds: vec!["bond0".into()],
            representors: vec![],
        };
        // 11:42 on bond0 is recent at 12:00: a failure of VF-LAG offload.
        let f = judge_ovs(&o, true, &ports, at("2020-03-19T12:00:00Z"));
        let e = get(&f, "ovs-errors", "");
        assert_eq!(e.outcome, Outcome::Fail);
        assert!(
            e.detail
                .starts_with("1 \"failed to offload flow\" errors in the last 60 min"),
            "{e:?}"
        );
        assert!(
            e.detail
                .ends_with("(ports bond0); last: Operation not supported: bond0"),
            "{e:?}"
        );
        // Errors on ports that are not the LAG's: a warning.
        let other = OvsPorts {
            bonds: vec!["bond1".into()],
            representors: vec![],
        };
        let f = judge_ovs(&o, true, &other, at("2020-03-19T12:00:00Z"));
        assert_eq!(get(&f, "ovs-errors", "").outcome, Outcome::Warn);
        // At 10:00 the eth4 error (09:30) is recent; a line stamped after "now" (clock skew)
        // is counted too rather than hidden.
        let f = judge_ovs(&o, true, &ports, at("2020-03-19T10:00:00Z"));
        let e = get(&f, "ovs-errors", "");
        assert!(
            e.detail.starts_with("2 \"failed to offload flow\""),
            "{e:?}"
        );
        // A day later nothing is recent.
        let f = judge_ovs(&o, true, &ports, at("2020-03-20T12:00:00Z"));
        assert_eq!(get(&f, "ovs-errors", "").outcome, Outcome::Pass);
    }

    #[test]
    fn ovs_log_times() {
        assert_eq!(
            at("2020-03-19T11:42:17.028Z")
                .duration_since(UNIX_EPOCH)
                .unwrap(),
            Duration::from_millis(1_584_618_137_028)
        );
        assert_eq!(at("1970-01-01T00:00:00Z"), UNIX_EPOCH);
        assert_eq!(
            at("2024-02-29T00:00:00.5Z")
                .duration_since(UNIX_EPOCH)
                .unwrap(),
            Duration::from_millis(1_709_164_800_500)
        );
        assert_eq!(parse_ovs_time("2020-13-01T00:00:00Z"), None);
        assert_eq!(parse_ovs_time("yesterday"), None);
    }

    #[test]
    fn enable_message_says_restart() {
        assert!(ovs_offload_message(true).contains("restart ovs-vswitchd"));
        assert!(ovs_offload_message(false).contains("nothing changed"));
    }
}
