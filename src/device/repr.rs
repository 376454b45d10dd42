//! Representors of a PF's VFs: from the devlink port dump (flavour `pcivf`) where devlink is
//! available, else from sysfs (same `phys_switch_id` as the PF, `phys_port_name` `pf<N>vf<M>`
//! or `c<C>pf<N>vf<M>`, parent device = the PF's device). Never by driver name. Results carry
//! the ifindex: udev renames representors moments after they appear, names are only for logs.

use super::devlink::{Devlink, Port, PORT_FLAVOUR_PCI_VF};
use super::portname::PortName;
use super::sysfs::{self, Pf};
use super::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representor {
    pub vf: u32,
    pub ifindex: u32,
    /// The name when found (may change any moment; for messages only).
    pub name: String,
    /// Controller number for `c<C>pf<N>vf<M>` (external host on a DPU), `None` when local.
    pub controller: Option<u32>,
}

/// Where the representors were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Devlink,
    Sysfs,
}

/// `pf0vf3` -> (None, 0, 3); `c1pf0vf3` -> (Some(1), 0, 3).
pub fn parse_vf_port_name(s: &str) -> Option<(Option<u32>, u32, u32)> {
    match PortName::parse(s) {
        PortName::Vf { controller, pf, vf } => Some((controller, pf, vf)),
        _ => None,
    }
}

/// Keep the local controller's representors when there are any (a DPU also shows the
/// external host's as `c1pf0vfN`); sort by VF number.
fn prefer_local(mut v: Vec<Representor>) -> Vec<Representor> {
    if v.iter().any(|r| r.controller.is_none()) {
        v.retain(|r| r.controller.is_none());
    }
    v.sort_by_key(|r| (r.controller, r.vf));
    v.dedup_by_key(|r| (r.controller, r.vf));
    v
}

/// VF representors among the ports of this PF's devlink instance (already filtered by handle).
pub fn from_devlink_ports(ports: &[Port]) -> Vec<Representor> {
    prefer_local(
        ports
            .iter()
            .filter(|p| p.flavour == Some(PORT_FLAVOUR_PCI_VF))
            .filter_map(|p| {
                Some(Representor {
                    vf: p.vf? as u32,
                    ifindex: p.netdev_ifindex?,
                    name: p.netdev_name.clone().unwrap_or_default(),
                    controller: p.external.then_some(p.controller.unwrap_or(1)),
                })
            })
            .collect(),
    )
}

/// The PF number this PF's representors carry in `pf<N>`: the PCI function on PCI devices
/// (mlx5 numbers them so); unknown (any) elsewhere.
fn pf_number(pf: &Pf) -> Option<u32> {
    pf.pci_addr().map(|a| a.function as u32)
}

/// Scan /sys/class/net for this PF's VF representors.
pub fn from_sysfs(pf: &Pf) -> Result<Vec<Representor>> {
    let Some(switch_id) = pf.phys_switch_id()? else {
        return Ok(vec![]); // not a switchdev port: no representors
    };
    let root = pf.root();
    let pfnum = pf_number(pf);
    let mut out = vec![];
    for name in sysfs::netdev_names(root)? {
        if name == pf.name.as_str() {
            continue;
        }
        // Renamed or removed since the listing: skip, the caller's bounded wait looks again.
        let Ok(Some(id)) = sysfs::netdev_attr(root, &name, "phys_switch_id") else {
            continue;
        };
        if id != switch_id {
            continue;
        }
        let Ok(Some(port)) = sysfs::netdev_attr(root, &name, "phys_port_name") else {
            continue;
        };
        let Some((controller, n, vf)) = parse_vf_port_name(&port) else {
            continue;
        };
        match sysfs::netdev_device(root, &name) {
            // Kernel 5.8+: representors are children of their PF's device.
            Some(dev) if dev != pf.dev_dir => continue,
            Some(_) => {}
            // Older kernels: virtual netdevs; fall back to the PF number.
            None if pfnum.is_some_and(|p| p != n) => continue,
            None => {}
        }
        let Ok(Some(ifindex)) = sysfs::netdev_ifindex(root, &name) else {
            continue;
        };
        out.push(Representor {
            vf,
            ifindex,
            name,
            controller,
        });
    }
    Ok(prefer_local(out))
}

/// This PF's representors now: devlink when given and it answers, else sysfs.
pub fn find(pf: &Pf, devlink: Option<&mut Devlink>) -> Result<(Vec<Representor>, Source)> {
    if let Some(dl) = devlink {
        match dl.ports(&pf.handle()) {
            Ok(ports) => return Ok((from_devlink_ports(&ports), Source::Devlink)),
            Err(e) => {
                tracing::debug!(pf = %pf.name, "devlink port dump failed, scanning sysfs: {e}")
            }
        }
    }
    Ok((from_sysfs(pf)?, Source::Sysfs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::devlink::Handle;
    use crate::device::sysfs::testtree::Tree;
    use crate::names::IfName;

    #[test]
    fn port_names() {
        assert_eq!(parse_vf_port_name("pf0vf3"), Some((None, 0, 3)));
        assert_eq!(parse_vf_port_name("c1pf0vf12"), Some((Some(1), 0, 12)));
        assert_eq!(parse_vf_port_name("pf1vf0"), Some((None, 1, 0)));
        for bad in [
            "p0", "pf0", "pf0vf", "pfxvf1", "c1pf0", "pf0sf3", "", "pf0vf1x", "p1",
        ] {
            assert_eq!(parse_vf_port_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sysfs_scan_keeps_only_this_pfs_vf_representors() {
        let t = Tree::new();
        let sw = "b8599f0001020304";
        let pf0 = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        let pf1 = t.pci_pf("ens3f1", "0000:37:00.1", 5, Some(8), 0, None);
        t.representor(&pf0, "eth7", 20, sw, "pf0vf1");
        t.representor(&pf0, "ens3f0r0", 21, sw, "pf0vf0");
        // same switch id (one NIC), other PF's representor
        t.representor(&pf1, "ens3f1r0", 22, sw, "pf1vf0");
        // an SF, the uplink, another NIC with the same port names
        t.representor(&pf0, "ens3f0s0", 23, sw, "pf0sf0");
        let other = t.pci_pf("ens4f0", "0000:81:00.0", 6, Some(8), 0, None);
        t.representor(&other, "ens4f0r0", 24, "00112233", "pf0vf0");
        let pf = Pf::open(&t.root(), &IfName::new("ens3f0").unwrap()).unwrap();
        let reps = from_sysfs(&pf).unwrap();
        assert_eq!(
            reps.iter().map(|r| (r.vf, r.ifindex)).collect::<Vec<_>>(),
            [(0, 21), (1, 20)]
        );
    }

    #[test]
    fn sysfs_scan_of_virtual_representors_uses_pf_number() {
        // Pre-5.8 kernels: representors without a parent device.
        let t = Tree::new();
        let sw = "b8599f0001020304";
        t.pci_pf("ens3f1", "0000:37:00.1", 5, Some(8), 0, None);
        for (n, idx, port) in [
            ("eth1", 30, "pf0vf0"),
            ("eth2", 31, "pf1vf0"),
            ("eth3", 32, "pf1vf1"),
        ] {
            t.netdev(n, idx, None);
            t.write(&format!("sys/devices/virtual/net/{n}/phys_switch_id"), sw);
            t.write(&format!("sys/devices/virtual/net/{n}/phys_port_name"), port);
        }
        let pf = Pf::open(&t.root(), &IfName::new("ens3f1").unwrap()).unwrap();
        let reps = from_sysfs(&pf).unwrap();
        assert_eq!(reps.iter().map(|r| r.ifindex).collect::<Vec<_>>(), [31, 32]);
    }

    #[test]
    fn not_switchdev_means_none() {
        let t = Tree::new();
        let pf0 = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        std::fs::remove_file(t.p(&format!("{pf0}/net/ens3f0/phys_switch_id"))).unwrap();
        t.representor(&pf0, "eth7", 20, "", "pf0vf1");
        let pf = Pf::open(&t.root(), &IfName::new("ens3f0").unwrap()).unwrap();
        assert!(from_sysfs(&pf).unwrap().is_empty());
    }

    #[test]
    fn devlink_ports_prefer_local_controller() {
        let h = Some(Handle {
            bus: "pci".into(),
            dev: "0000:03:00.0".into(),
        });
        let port = |index, flavour, vf: Option<u16>, ext: bool, ifindex| Port {
            handle: h.clone(),
            index,
            flavour: Some(flavour),
            pf: Some(0),
            vf,
            controller: ext.then_some(1),
            external: ext,
            netdev_ifindex: ifindex,
            netdev_name: Some(format!("r{index}")),
        };
        let ports = vec![
            port(1, 0, None, false, Some(10)), // physical uplink
            port(2, 4, Some(1), false, Some(12)),
            port(3, 4, Some(0), false, Some(11)),
            port(4, 4, Some(0), true, Some(13)), // external host's VF
            port(5, 4, Some(2), false, None),    // netdev not registered yet
        ];
        let reps = from_devlink_ports(&ports);
        assert_eq!(
            reps.iter().map(|r| (r.vf, r.ifindex)).collect::<Vec<_>>(),
            [(0, 11), (1, 12)]
        );
        let only_ext = from_devlink_ports(&ports[3..4]);
        assert_eq!(only_ext[0].controller, Some(1));
    }
}
