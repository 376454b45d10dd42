//! sysfs: a PF's device, its SR-IOV files and VFs, drivers, bond membership, switchdev identity.
//! Every path goes through [`Root`]; nothing here knows a driver by name.

use super::devlink::Handle;
use super::{Error, Result};
use crate::names::IfName;
use crate::paths::Root;
use nix::errno::Errno;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often bounded waits look again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Poll `f` until it yields a value or `timeout` passes (then [`Error::Timeout`] naming `what`).
/// `f` runs at least once; there is no fixed sleep before the first look.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        let spent = start.elapsed();
        if spent >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                secs: spent.as_secs_f64(),
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout - spent));
    }
}

/// Read a sysfs attribute, trimmed. `Ok(None)` when the file is absent or the device says the
/// attribute does not apply (EOPNOTSUPP/ENODEV/EINVAL on read, as for `phys_port_name` of a
/// non-switchdev port).
pub fn read_attr(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim_end_matches('\n').trim().to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e)
            if matches!(
                e.raw_os_error().map(Errno::from_raw),
                Some(Errno::EOPNOTSUPP | Errno::ENODEV | Errno::EINVAL)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Write a sysfs attribute in one write(2), as `echo v > file` does (O_TRUNC, which sysfs
/// ignores) but never creating it: a missing file is an error, as it is on sysfs. The kernel's
/// errno (EBUSY, ENOMEM...) is kept.
pub fn write_attr(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| Error::io(path, e))
}

fn read_u32(path: &Path) -> Result<Option<u32>> {
    read_attr(path)?
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| Error::Invalid(format!("{}: {s:?} is not a number", path.display())))
        })
        .transpose()
}

/// Last component of a symlink's target (`driver` -> `mlx5_core`), `None` if no link.
pub fn link_basename(path: &Path) -> Result<Option<String>> {
    match fs::read_link(path) {
        Ok(t) => Ok(t.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A PCI address `dddd:bb:dd.f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciAddr {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciAddr {
    pub fn parse(s: &str) -> Option<Self> {
        let (dom, rest) = s.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (dev, func) = rest.split_once('.')?;
        if dom.len() != 4 || bus.len() != 2 || dev.len() != 2 || func.len() != 1 {
            return None;
        }
        Some(PciAddr {
            domain: u32::from_str_radix(dom, 16).ok()?,
            bus: u8::from_str_radix(bus, 16).ok()?,
            device: u8::from_str_radix(dev, 16).ok()?,
            function: u8::from_str_radix(func, 16).ok()?,
        })
    }

    /// Same physical card: same domain, bus and device number.
    pub fn same_slot(&self, other: &PciAddr) -> bool {
        (self.domain, self.bus, self.device) == (other.domain, other.bus, other.device)
    }

    /// `dddd:bb:dd` — names the NIC (both ports) in lock files.
    pub fn slot(&self) -> String {
        format!("{:04x}:{:02x}:{:02x}", self.domain, self.bus, self.device)
    }
}

/// A physical port's `phys_port_name`: empty/absent (legacy mode) or `p<N>` (uplink in
/// switchdev). VF/SF representors (`pf0vf3`, `c1pf0sf2`) share the PF's parent device but are
/// never physical ports.
pub fn is_physical_port(phys_port_name: &str) -> bool {
    super::portname::PortName::parse(phys_port_name) == super::portname::PortName::Physical
}

/// A VF of a PF, as its `virtfn<index>` link shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vf {
    pub index: u32,
    /// Bus address (basename of the `virtfn` target), e.g. `0000:37:00.2`.
    pub addr: String,
    /// The VF's device directory.
    pub dir: PathBuf,
}

impl Vf {
    /// The driver bound right now (basename of the `driver` link), if any.
    pub fn driver(&self) -> Result<Option<String>> {
        link_basename(&self.dir.join("driver"))
    }
}

/// A PF net device and its parent device in sysfs.
#[derive(Debug, Clone)]
pub struct Pf {
    pub name: IfName,
    root: Root,
    /// Resolved `/sys/class/net/<pf>/device` (inside the root).
    pub dev_dir: PathBuf,
    /// Basename of `device/subsystem`: `pci`, `netdevsim`.
    pub bus: String,
    /// Basename of the device: `0000:37:00.0`, `netdevsim10`.
    pub dev_name: String,
}

impl Pf {
    /// [`Error::NotFound`] if the netdev does not exist, [`Error::Unsupported`] if it has no
    /// parent device (a virtual netdev cannot be a PF).
    pub fn open(root: &Root, name: &IfName) -> Result<Self> {
        let net = root.path("/sys/class/net").join(name.as_str());
        if fs::symlink_metadata(&net).is_err() {
            return Err(Error::NotFound(format!(
                "network interface {name} does not exist"
            )));
        }
        let link = net.join("device");
        let dev_dir = match fs::canonicalize(&link) {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::Unsupported(format!(
                    "{name} has no parent device (a virtual interface cannot have VFs)"
                )))
            }
            Err(e) => return Err(Error::io(link, e)),
        };
        let bus = link_basename(&dev_dir.join("subsystem"))?.ok_or_else(|| {
            Error::Unsupported(format!("{}: no subsystem link", dev_dir.display()))
        })?;
        let dev_name = dev_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Invalid(format!("{}: no device name", dev_dir.display())))?;
        Ok(Pf {
            name: name.clone(),
            root: root.clone(),
            dev_dir,
            bus,
            dev_name,
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The devlink handle `<bus>/<device>`.
    pub fn handle(&self) -> Handle {
        Handle {
            bus: self.bus.clone(),
            dev: self.dev_name.clone(),
        }
    }

    pub fn is_pci(&self) -> bool {
        self.bus == "pci"
    }

    pub fn pci_addr(&self) -> Option<PciAddr> {
        self.is_pci()
            .then(|| PciAddr::parse(&self.dev_name))
            .flatten()
    }

    /// PCI vendor and device IDs, where the device has them.
    pub fn pci_ids(&self) -> Result<Option<(u16, u16)>> {
        let hex = |f: &str| -> Result<Option<u16>> {
            Ok(read_attr(&self.dev_dir.join(f))?
                .and_then(|s| u16::from_str_radix(s.trim_start_matches("0x"), 16).ok()))
        };
        Ok(match (hex("vendor")?, hex("device")?) {
            (Some(v), Some(d)) => Some((v, d)),
            _ => None,
        })
    }

    fn netdir(&self) -> PathBuf {
        self.root.path("/sys/class/net").join(self.name.as_str())
    }

    /// `sriov_numvfs`; `None` when the device has no SR-IOV at all.
    pub fn numvfs(&self) -> Result<Option<u32>> {
        read_u32(&self.dev_dir.join("sriov_numvfs"))
    }

    /// `sriov_totalvfs`; `None` where the file does not exist (netdevsim).
    pub fn totalvfs(&self) -> Result<Option<u32>> {
        read_u32(&self.dev_dir.join("sriov_totalvfs"))
    }

    pub fn set_numvfs(&self, n: u32) -> Result<()> {
        write_attr(&self.dev_dir.join("sriov_numvfs"), &n.to_string())
    }

    /// `sriov_drivers_autoprobe`; `None` where absent.
    pub fn autoprobe(&self) -> Result<Option<bool>> {
        Ok(read_u32(&self.dev_dir.join("sriov_drivers_autoprobe"))?.map(|v| v != 0))
    }

    pub fn set_autoprobe(&self, on: bool) -> Result<()> {
        write_attr(
            &self.dev_dir.join("sriov_drivers_autoprobe"),
            if on { "1" } else { "0" },
        )
    }

    /// The VFs present now, sorted by index.
    pub fn vfs(&self) -> Result<Vec<Vf>> {
        let rd = match fs::read_dir(&self.dev_dir) {
            Ok(rd) => rd,
            Err(e) => return Err(Error::io(&self.dev_dir, e)),
        };
        let mut out = vec![];
        for ent in rd {
            let ent = ent.map_err(|e| Error::io(&self.dev_dir, e))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some(index) = name
                .strip_prefix("virtfn")
                .and_then(|i| i.parse::<u32>().ok())
            else {
                continue;
            };
            let path = ent.path();
            // A link whose target vanished mid-read is simply not (yet) a VF.
            let Ok(dir) = fs::canonicalize(&path) else {
                continue;
            };
            let Some(addr) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            out.push(Vf { index, addr, dir });
        }
        out.sort_by_key(|v| v.index);
        Ok(out)
    }

    /// Wait until `virtfn0..n-1` all exist (VF creation is asynchronous).
    pub fn wait_vfs(&self, n: u32, timeout: Duration) -> Result<Vec<Vf>> {
        wait_for(&format!("{n} VF links of {}", self.name), timeout, || {
            let vfs = self.vfs()?;
            Ok(((0..n).all(|i| vfs.iter().any(|v| v.index == i))).then_some(vfs))
        })
    }

    pub fn ifindex(&self) -> Result<u32> {
        netdev_ifindex(&self.root, self.name.as_str())?.ok_or_else(|| {
            Error::NotFound(format!("network interface {} has no ifindex", self.name))
        })
    }

    /// The bond (or other master) this PF is enslaved to, by name.
    pub fn master(&self) -> Result<Option<String>> {
        link_basename(&self.netdir().join("master"))
    }

    pub fn phys_switch_id(&self) -> Result<Option<String>> {
        Ok(read_attr(&self.netdir().join("phys_switch_id"))?.filter(|s| !s.is_empty()))
    }

    pub fn phys_port_name(&self) -> Result<Option<String>> {
        Ok(read_attr(&self.netdir().join("phys_port_name"))?.filter(|s| !s.is_empty()))
    }

    /// The physical-port netdev under this PF's device (`<device>/net/*` whose
    /// `phys_port_name` is empty/absent or `p<N>`, i.e. not a VF/SF representor), as
    /// (ifindex, current name); `None` unless exactly one. Used when the PF netdev was
    /// re-created (new ifindex, maybe a new name) by an eswitch mode change.
    pub fn uplink(&self) -> Result<Option<(u32, String)>> {
        let dir = self.dev_dir.join("net");
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(None);
        };
        let mut found = vec![];
        for e in rd.flatten() {
            let p = e.path();
            let port = read_attr(&p.join("phys_port_name"))
                .ok()
                .flatten()
                .unwrap_or_default();
            if !is_physical_port(&port) {
                continue;
            }
            if let Ok(Some(idx)) = read_u32(&p.join("ifindex")) {
                found.push((idx, e.file_name().to_string_lossy().into_owned()));
            }
        }
        Ok((found.len() == 1).then(|| found.remove(0)))
    }
}

/// Is an IOMMU active (`/sys/class/iommu` not empty)?
pub fn iommu_active(root: &Root) -> bool {
    fs::read_dir(root.path("/sys/class/iommu"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// A netdev's directory, `/sys/class/net/<name>` (it may not exist).
pub fn netdev_dir(root: &Root, name: &str) -> PathBuf {
    root.path("/sys/class/net").join(name)
}

/// The master (bond, bridge...) a netdev is enslaved to, by its `master` link.
pub fn netdev_master(root: &Root, name: &str) -> Option<String> {
    link_basename(&netdev_dir(root, name).join("master"))
        .ok()
        .flatten()
}

/// Ask the kernel to send a `change` uevent for a netdev (udev then re-runs its rules).
pub fn netdev_change_uevent(root: &Root, name: &str) -> std::io::Result<()> {
    fs::write(netdev_dir(root, name).join("uevent"), "change")
}

/// The ifindex of a netdev by its current name (`None` if it is gone).
pub fn netdev_ifindex(root: &Root, name: &str) -> Result<Option<u32>> {
    read_u32(&root.path("/sys/class/net").join(name).join("ifindex"))
}

/// A sysfs attribute of a netdev (`phys_switch_id`, `phys_port_name`...).
pub fn netdev_attr(root: &Root, name: &str, attr: &str) -> Result<Option<String>> {
    read_attr(&root.path("/sys/class/net").join(name).join(attr))
}

/// Names in `/sys/class/net` right now (a snapshot: callers re-check by ifindex).
pub fn netdev_names(root: &Root) -> Result<Vec<String>> {
    let dir = root.path("/sys/class/net");
    let mut v: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

/// The device directory a netdev's `device` link resolves to.
pub fn netdev_device(root: &Root, name: &str) -> Option<PathBuf> {
    device_of(&netdev_dir(root, name))
}

/// The device directory the `device` link of a netdev directory resolves to.
pub fn device_of(netdev_dir: &Path) -> Option<PathBuf> {
    fs::canonicalize(netdev_dir.join("device")).ok()
}

/// The entries of a sysfs directory, sorted (empty if it cannot be read).
pub fn list_dir(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Bond mode name from `bonding/mode` (`802.3ad 4` -> `802.3ad`); `None` if not a bond.
pub fn bond_mode(root: &Root, bond: &str) -> Result<Option<String>> {
    Ok(
        read_attr(&root.path("/sys/class/net").join(bond).join("bonding/mode"))?
            .and_then(|s| s.split_whitespace().next().map(str::to_string)),
    )
}

/// Members of a bond from `bonding/slaves`.
pub fn bond_slaves(root: &Root, bond: &str) -> Result<Vec<String>> {
    Ok(read_attr(
        &root
            .path("/sys/class/net")
            .join(bond)
            .join("bonding/slaves"),
    )?
    .map(|s| s.split_whitespace().map(str::to_string).collect())
    .unwrap_or_default())
}

fn drivers_dir(root: &Root, bus: &str) -> PathBuf {
    root.path("/sys/bus").join(bus).join("drivers")
}

/// Detach a device from its driver: `/sys/bus/<bus>/drivers/<driver>/unbind`.
pub fn unbind(root: &Root, bus: &str, driver: &str, addr: &str) -> Result<()> {
    write_attr(&drivers_dir(root, bus).join(driver).join("unbind"), addr)
}

/// Attach a device to a named driver: `/sys/bus/<bus>/drivers/<driver>/bind`.
pub fn bind(root: &Root, bus: &str, driver: &str, addr: &str) -> Result<()> {
    write_attr(&drivers_dir(root, bus).join(driver).join("bind"), addr)
}

/// Let the bus match a driver (by modalias and `driver_override`), as autoprobe would have:
/// `/sys/bus/<bus>/drivers_probe`. Works with `sriov_drivers_autoprobe=0`.
pub fn probe(root: &Root, bus: &str, addr: &str) -> Result<()> {
    write_attr(&root.path("/sys/bus").join(bus).join("drivers_probe"), addr)
}

/// `driver_override` of a device, if set (an administrator's pin wins over our memory).
pub fn driver_override(dev_dir: &Path) -> Result<Option<String>> {
    Ok(read_attr(&dev_dir.join("driver_override"))?.filter(|s| !s.is_empty() && s != "(null)"))
}

/// NVIDIA OFED's compat file for a devlink setting: `/sys/class/net/<pf>/compat/devlink/<name>`
/// (`mode`, `lag_port_select_mode`...), for kernels whose devlink lacks the param.
pub fn compat_devlink(root: &Root, pf: &IfName, name: &str) -> PathBuf {
    root.path("/sys/class/net")
        .join(pf.as_str())
        .join("compat/devlink")
        .join(name)
}

/// Builders for fake sysfs trees (unit tests only).
#[cfg(test)]
pub mod testtree {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};

    pub struct Tree {
        pub dir: tempfile::TempDir,
    }

    impl Default for Tree {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Tree {
        pub fn new() -> Self {
            let t = Tree {
                dir: tempfile::tempdir().unwrap(),
            };
            for d in ["sys/class/net", "sys/bus/pci/drivers", "run"] {
                fs::create_dir_all(t.p(d)).unwrap();
            }
            fs::write(t.p("sys/bus/pci/drivers_probe"), "").unwrap();
            t
        }
        pub fn root(&self) -> crate::paths::Root {
            crate::paths::Root::new(self.dir.path())
        }
        pub fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        pub fn write(&self, rel: &str, s: &str) {
            let p = self.p(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        }
        pub fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.p(rel)).unwrap()
        }
        pub fn link(&self, rel: &str, target_rel: &str) {
            let p = self.p(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            let _ = fs::remove_file(&p);
            symlink(self.p(target_rel), p).unwrap();
        }
        pub fn driver(&self, bus: &str, drv: &str) {
            self.write(&format!("sys/bus/{bus}/drivers/{drv}/bind"), "");
            self.write(&format!("sys/bus/{bus}/drivers/{drv}/unbind"), "");
        }
        /// A PCI PF `addr` with netdev `name`, SR-IOV files and `numvfs` VFs bound to `vf_driver`.
        pub fn pci_pf(
            &self,
            name: &str,
            addr: &str,
            ifindex: u32,
            total: Option<u32>,
            numvfs: u32,
            vf_driver: Option<&str>,
        ) -> String {
            let dev = format!("sys/devices/pci0000:00/{addr}");
            self.write(&format!("{dev}/vendor"), "0x15b3\n");
            self.write(&format!("{dev}/device"), "0x101d\n");
            self.write(&format!("{dev}/sriov_numvfs"), &format!("{numvfs}\n"));
            if let Some(t) = total {
                self.write(&format!("{dev}/sriov_totalvfs"), &format!("{t}\n"));
            }
            self.write(&format!("{dev}/sriov_drivers_autoprobe"), "1\n");
            self.link(&format!("{dev}/subsystem"), "sys/bus/pci");
            self.netdev(name, ifindex, Some(&dev));
            self.write(
                &format!("{dev}/net/{name}/phys_switch_id"),
                "b8599f0001020304\n",
            );
            self.write(&format!("{dev}/net/{name}/phys_port_name"), "p0\n");
            for i in 0..numvfs {
                self.add_vf(&dev, i, vf_driver);
            }
            dev
        }
        pub fn add_vf(&self, pf_dev: &str, i: u32, driver: Option<&str>) -> String {
            let (base, func) = pf_dev.rsplit_once('.').unwrap();
            let func: u32 = func.parse().unwrap();
            let vf = format!("{}.{}", base, func * 16 + 2 + i);
            self.write(&format!("{vf}/vendor"), "0x15b3\n");
            self.link(&format!("{pf_dev}/virtfn{i}"), &vf);
            self.link(&format!("{vf}/physfn"), pf_dev);
            self.link(&format!("{vf}/subsystem"), "sys/bus/pci");
            if let Some(d) = driver {
                self.driver("pci", d);
                self.link(&format!("{vf}/driver"), &format!("sys/bus/pci/drivers/{d}"));
            }
            vf
        }
        /// A netdev under `dev` (or virtual when None), linked from /sys/class/net.
        pub fn netdev(&self, name: &str, ifindex: u32, dev: Option<&str>) -> String {
            let nd = match dev {
                Some(d) => {
                    let nd = format!("{d}/net/{name}");
                    self.link(&format!("{nd}/device"), d);
                    nd
                }
                None => format!("sys/devices/virtual/net/{name}"),
            };
            self.write(&format!("{nd}/ifindex"), &format!("{ifindex}\n"));
            self.link(&format!("sys/class/net/{name}"), &nd);
            nd
        }
        pub fn representor(
            &self,
            pf_dev: &str,
            name: &str,
            ifindex: u32,
            switch_id: &str,
            port: &str,
        ) {
            let nd = self.netdev(name, ifindex, Some(pf_dev));
            self.write(&format!("{nd}/phys_switch_id"), &format!("{switch_id}\n"));
            self.write(&format!("{nd}/phys_port_name"), &format!("{port}\n"));
        }
        pub fn bond(&self, bond: &str, mode: &str, slaves: &[&str]) {
            let nd = self.netdev(bond, 100, None);
            self.write(&format!("{nd}/bonding/mode"), &format!("{mode}\n"));
            self.write(
                &format!("{nd}/bonding/slaves"),
                &format!("{}\n", slaves.join(" ")),
            );
            for s in slaves {
                self.link(&format!("sys/class/net/{s}/master"), &nd);
            }
        }
        pub fn exists(&self, rel: &str) -> bool {
            Path::new(&self.p(rel)).exists()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testtree::Tree;
    use super::*;

    fn name(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }

    #[test]
    fn pci_pf_model() {
        let t = Tree::new();
        t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(16), 2, Some("mlx5_core"));
        let pf = Pf::open(&t.root(), &name("ens3f0")).unwrap();
        assert_eq!(pf.handle().to_string(), "pci/0000:37:00.0");
        assert_eq!(pf.pci_ids().unwrap(), Some((0x15b3, 0x101d)));
        assert_eq!(pf.numvfs().unwrap(), Some(2));
        assert_eq!(pf.totalvfs().unwrap(), Some(16));
        assert_eq!(pf.autoprobe().unwrap(), Some(true));
        assert_eq!(pf.ifindex().unwrap(), 4);
        assert_eq!(pf.phys_port_name().unwrap().as_deref(), Some("p0"));
        let vfs = pf.vfs().unwrap();
        assert_eq!(
            vfs.iter()
                .map(|v| (v.index, v.addr.as_str()))
                .collect::<Vec<_>>(),
            [(0, "0000:37:00.2"), (1, "0000:37:00.3")]
        );
        assert_eq!(vfs[1].driver().unwrap().as_deref(), Some("mlx5_core"));
        assert_eq!(pf.master().unwrap(), None);
    }

    #[test]
    fn netdevsim_pf_has_no_totalvfs() {
        let t = Tree::new();
        t.write("sys/devices/netdevsim10/sriov_numvfs", "0\n");
        t.link("sys/devices/netdevsim10/subsystem", "sys/bus/netdevsim");
        t.netdev("eni10np1", 5, Some("sys/devices/netdevsim10"));
        let pf = Pf::open(&t.root(), &name("eni10np1")).unwrap();
        assert_eq!(pf.handle().to_string(), "netdevsim/netdevsim10");
        assert_eq!(pf.totalvfs().unwrap(), None);
        assert_eq!(pf.pci_ids().unwrap(), None);
        assert_eq!(pf.pci_addr(), None);
        assert_eq!(pf.autoprobe().unwrap(), None);
    }

    #[test]
    fn missing_and_virtual_interfaces() {
        let t = Tree::new();
        assert!(matches!(
            Pf::open(&t.root(), &name("nope")),
            Err(Error::NotFound(_))
        ));
        t.netdev("bond0", 9, None);
        assert!(matches!(
            Pf::open(&t.root(), &name("bond0")),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn writes_go_to_the_bus_of_the_vf_driver() {
        let t = Tree::new();
        t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 1, Some("igbvf"));
        unbind(&t.root(), "pci", "igbvf", "0000:37:00.2").unwrap();
        assert_eq!(t.read("sys/bus/pci/drivers/igbvf/unbind"), "0000:37:00.2");
        probe(&t.root(), "pci", "0000:37:00.2").unwrap();
        assert_eq!(t.read("sys/bus/pci/drivers_probe"), "0000:37:00.2");
        // A driver that does not exist is an error, not a created file.
        assert!(bind(&t.root(), "pci", "mlx5_core", "0000:37:00.2").is_err());
        assert!(!t.exists("sys/bus/pci/drivers/mlx5_core/bind"));
    }

    #[test]
    fn bounded_wait_sees_late_vfs_and_times_out_otherwise() {
        let t = Tree::new();
        let dev = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        let pf = Pf::open(&t.root(), &name("ens3f0")).unwrap();
        let start = Instant::now();
        let err = pf.wait_vfs(2, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
        let root = t.dir.path().to_path_buf();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            for i in 0..2 {
                let vf = root.join(format!("sys/devices/pci0000:00/0000:37:00.{}", 2 + i));
                fs::create_dir_all(&vf).unwrap();
                std::os::unix::fs::symlink(&vf, root.join(&dev).join(format!("virtfn{i}")))
                    .unwrap();
            }
        });
        let vfs = pf.wait_vfs(2, Duration::from_secs(5)).unwrap();
        h.join().unwrap();
        assert_eq!(vfs.len(), 2);
    }

    #[test]
    fn uplink_is_the_physical_port_not_a_representor() {
        let t = Tree::new();
        let dev = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        t.representor(&dev, "eth5", 20, "b8599f0001020304", "pf0vf0");
        let pf = Pf::open(&t.root(), &name("ens3f0")).unwrap();
        assert_eq!(pf.uplink().unwrap(), Some((4, "ens3f0".to_string())));
        // Re-created under another name and ifindex; the representor is still not it.
        fs::remove_file(t.p("sys/class/net/ens3f0")).unwrap();
        fs::rename(
            t.p(&format!("{dev}/net/ens3f0")),
            t.p(&format!("{dev}/net/ens3f0np0")),
        )
        .unwrap();
        t.write(&format!("{dev}/net/ens3f0np0/ifindex"), "9\n");
        assert_eq!(pf.uplink().unwrap(), Some((9, "ens3f0np0".to_string())));
        // Two physical candidates: ambiguous, no answer.
        t.netdev("ens3f0x", 10, Some(&dev));
        assert_eq!(pf.uplink().unwrap(), None);
    }

    #[test]
    fn bond_files() {
        let t = Tree::new();
        t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        t.bond("bond0", "802.3ad 4", &["ens3f0"]);
        let pf = Pf::open(&t.root(), &name("ens3f0")).unwrap();
        assert_eq!(pf.master().unwrap().as_deref(), Some("bond0"));
        assert_eq!(
            bond_mode(&t.root(), "bond0").unwrap().as_deref(),
            Some("802.3ad")
        );
        assert_eq!(bond_slaves(&t.root(), "bond0").unwrap(), ["ens3f0"]);
        assert_eq!(bond_mode(&t.root(), "ens3f0").unwrap(), None);
    }

    #[test]
    fn pci_addresses() {
        let a = PciAddr::parse("0000:37:00.0").unwrap();
        let b = PciAddr::parse("0000:37:00.1").unwrap();
        let c = PciAddr::parse("0000:38:00.1").unwrap();
        assert!(a.same_slot(&b) && !a.same_slot(&c));
        assert_eq!(b.function, 1);
        assert_eq!(a.slot(), "0000:37:00");
        assert_eq!(PciAddr::parse("netdevsim10"), None);
        assert_eq!(PciAddr::parse("0000:37:00"), None);
    }
}
