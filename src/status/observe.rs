//! Observing: sysfs, debugfs and the device layer's netlink ([`Net`], the port tables shared
//! with the stages) → plain data ([`PfObs`], [`BondObs`]). Nothing here judges.

use super::Seen;
use crate::config::{EswitchMode as ConfEswitch, Lag};
use crate::device::devlink::EswitchMode;
use crate::device::ethtool::{Channels, Feature};
use crate::device::net::Net;
use crate::device::ports::PortTables;
use crate::device::repr::Source;
use crate::device::sysfs::{self, Pf};
use crate::kernlog::{self, DebugfsLag};
use crate::names::IfName;
use crate::paths::Root;
use nix::errno::Errno;

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
    pub(super) fn label(&self) -> String {
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

/// The device layer as `status` uses it: the same [`Net`] and port tables as the stages. The
/// tables (hw-tc-offload and channels of every netdev) are dumped once, on first use, for all
/// PFs: two requests instead of two per representor; a device missing from them is asked on
/// its own.
pub(super) struct Probe<'a> {
    pub net: &'a mut dyn Net,
    tables: Option<PortTables>,
}

impl<'a> Probe<'a> {
    pub fn new(net: &'a mut dyn Net) -> Self {
        Probe { net, tables: None }
    }

    fn port(&mut self, name: &str, ifindex: Option<u32>, vf: Option<u32>) -> PortObs {
        let Some(i) = ifindex else {
            let no = format!("{name} has no ifindex");
            return PortObs {
                name: name.to_string(),
                vf,
                offload: Err(no.clone()),
                channels: Err(no),
            };
        };
        let net = &mut *self.net;
        let tables = self
            .tables
            .get_or_insert_with(|| PortTables::read_quietly(net, true, true));
        let offload = tables.offload(net, i).map_err(|e| e.to_string());
        let channels = match tables.channels(net, i) {
            // No channel settings at all (netdevsim): nothing to judge.
            Err(e) if e.is_kernel(&[Errno::EOPNOTSUPP]) => Ok(NO_CHANNELS),
            r => r.map_err(|e| e.to_string()),
        };
        PortObs {
            name: name.to_string(),
            vf,
            offload,
            channels,
        }
    }
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

/// Every observation of one PF. Long but flat: one read per field of [`PfObs`], in its order.
pub(super) fn observe_pf(root: &Root, lag: &Lag, name: &IfName, k: &mut Probe) -> PfObs {
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
    o.eswitch = match k.net.eswitch_mode(&h).map_err(|e| e.to_string()) {
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
        o.reps = k
            .net
            .representors(&pf)
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

pub(super) fn observe_bond(root: &Root, name: &str) -> BondObs {
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
