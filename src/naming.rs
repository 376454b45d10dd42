//! Stable names across the eswitch mode change (`udev-rules/79-vflag-names.rules`).
//!
//! On mlx5 the PF netdev can be re-created as the uplink representor when the eswitch goes to
//! switchdev, and udev's predictable naming then appends the new `phys_port_name`
//! (`ens3f0` -> `ens3f0np0`): the bond config stops matching. The early stage records, before
//! the mode change, which device (devlink handle) and port each configured PF is
//! (`/run/vflag/<pf>.json`); for a net device that udev adds, [`udev_name`] answers:
//! - a physical port (`phys_port_name` empty, absent or `p<N>`) of a recorded PF's device:
//!   the PF's configured name;
//! - a VF representor (`pf<N>vf<M>`) of a recorded PF's device, when the LAG asks for
//!   `representor-names`: `<pf>r<M>`, if that fits IFNAMSIZ and is no configured PF's name;
//! - anything else: nothing (the distribution's naming stays).
//!
//! Keyed by the device and restricted to physical ports, a representor — which shares the
//! PF's parent device — can never take the PF's name.

use crate::config::Plan;
use crate::device::repr::parse_vf_port_name;
use crate::device::sysfs::{device_of, is_physical_port, link_basename, read_attr};
use crate::names::IfName;
use crate::paths::Root;
use crate::stages::State;
use std::path::Path;

/// `<pf>r<vf>`: short, predictable, derived from the PF and VF index.
pub fn representor_name(plan: &Plan, pf: &IfName, vf: u32) -> Option<IfName> {
    let name = IfName::new(&format!("{pf}r{vf}")).ok()?;
    // Never the name of a configured PF.
    plan.pfs().all(|(_, p)| *p != name).then_some(name)
}

/// The name vflag gives the net device whose sysfs directory is `netdev_dir`, if any.
pub fn udev_name(root: &Root, plan: &Plan, netdev_dir: &Path) -> Option<IfName> {
    let device = device_of(netdev_dir)?;
    let handle = format!(
        "{}/{}",
        link_basename(&device.join("subsystem")).ok()??,
        device.file_name()?.to_string_lossy()
    );
    let port = read_attr(&netdev_dir.join("phys_port_name"))
        .ok()
        .flatten()
        .unwrap_or_default();
    for (lag, pf) in plan.pfs() {
        let Some(st) = State::read(root, pf) else {
            continue;
        };
        if st.device != handle {
            continue;
        }
        if is_physical_port(&port) {
            // Where the device has several physical ports, the recorded one only; the port
            // name of the PF itself changes from empty to p<N> with the mode on mlx5.
            let recorded = st.port.as_deref().unwrap_or("");
            if recorded.is_empty() || port.is_empty() || recorded == port {
                return Some(pf.clone());
            }
        } else if let Some((None, _, vf)) = parse_vf_port_name(&port) {
            if lag.representor_names {
                return representor_name(plan, pf, vf);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Lag;

    fn plan(rep_names: bool) -> Plan {
        let loaded = crate::config::parse_native(&[(
            "/etc/vflag/vflag.conf".into(),
            format!(
                "[lag bond0]\npfs = ens3f0 ens3f1\nrepresentor-names = {}\n",
                if rep_names { "yes" } else { "no" }
            ),
        )]);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        loaded.plan
    }

    /// A PCI PF device with a netdev `name` (phys_port_name `port`) under it.
    fn netdev(root: &Path, name: &str, port: Option<&str>) -> std::path::PathBuf {
        let dev = root.join("sys/devices/pci0000:00/0000:37:00.0");
        std::fs::create_dir_all(root.join("sys/bus/pci")).unwrap();
        if !dev.join("subsystem").exists() {
            std::fs::create_dir_all(&dev).unwrap();
            std::os::unix::fs::symlink(root.join("sys/bus/pci"), dev.join("subsystem")).unwrap();
        }
        let net = dev.join("net").join(name);
        std::fs::create_dir_all(&net).unwrap();
        std::os::unix::fs::symlink(&dev, net.join("device")).unwrap();
        if let Some(p) = port {
            std::fs::write(net.join("phys_port_name"), format!("{p}\n")).unwrap();
        }
        net
    }

    fn record(root: &Root, pf: &str, port: &str) {
        let st = State {
            device: "pci/0000:37:00.0".into(),
            port: Some(port.into()),
            ..State::default()
        };
        st.save(root, &IfName::new(pf).unwrap()).unwrap();
    }

    #[test]
    fn the_recreated_uplink_gets_the_pf_name_back() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let p = plan(false);
        let uplink = netdev(d.path(), "eth7", Some("p0"));
        assert_eq!(
            udev_name(&root, &p, &uplink),
            None,
            "nothing recorded yet: distro naming"
        );
        record(&root, "ens3f0", "");
        assert_eq!(udev_name(&root, &p, &uplink).unwrap().as_str(), "ens3f0");
        let legacy = netdev(d.path(), "eth8", None);
        assert_eq!(udev_name(&root, &p, &legacy).unwrap().as_str(), "ens3f0");
    }

    #[test]
    fn a_representor_never_takes_the_pf_name() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        record(&root, "ens3f0", "");
        let rep = netdev(d.path(), "eth9", Some("pf0vf3"));
        assert_eq!(
            udev_name(&root, &plan(false), &rep),
            None,
            "representor names off"
        );
        assert_eq!(
            udev_name(&root, &plan(true), &rep).unwrap().as_str(),
            "ens3f0r3"
        );
        let sf = netdev(d.path(), "eth10", Some("pf0sf1"));
        assert_eq!(udev_name(&root, &plan(true), &sf), None);
        let dpu = netdev(d.path(), "eth11", Some("c1pf0vf1"));
        assert_eq!(
            udev_name(&root, &plan(true), &dpu),
            None,
            "external host's representors"
        );
    }

    #[test]
    fn another_physical_port_of_the_device_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        record(&root, "ens3f0", "p1");
        let other = netdev(d.path(), "eth5", Some("p2"));
        assert_eq!(udev_name(&root, &plan(false), &other), None);
        let same = netdev(d.path(), "eth6", Some("p1"));
        assert_eq!(
            udev_name(&root, &plan(false), &same).unwrap().as_str(),
            "ens3f0"
        );
    }

    #[test]
    fn representor_names_fit_and_never_collide() {
        let loaded = crate::config::parse_native(&[(
            "/etc/vflag/vflag.conf".into(),
            "[lag a]\npfs = enp65s0f0np0 x\nrepresentor-names = yes\n[lag b]\npfs = xr1\n".into(),
        )]);
        let pf = |s: &str| IfName::new(s).unwrap();
        assert_eq!(
            representor_name(&loaded.plan, &pf("enp65s0f0np0"), 100),
            None,
            "16 bytes"
        );
        assert_eq!(
            representor_name(&loaded.plan, &pf("x"), 1),
            None,
            "xr1 is a PF"
        );
        assert_eq!(
            representor_name(&loaded.plan, &pf("x"), 2)
                .unwrap()
                .as_str(),
            "xr2"
        );
        let _: Option<&Lag> = loaded.plan.lags.first();
    }
}
