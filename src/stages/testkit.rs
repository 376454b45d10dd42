//! Test-only helpers of the stages: a LAG, short timeouts, a two-port NIC in a fake sysfs tree
//! and a thread that acts on it like the kernel. They prove vflag's own decisions (guards,
//! order, idempotence, what is written where); they prove nothing about kernel behaviour —
//! that is the VM test bed's job.

pub use super::*;
pub use crate::config::{EswitchMode as ConfEswitch, NetworkStack};
pub use crate::device::devlink::Handle;
pub use crate::device::ethtool::Feature;
pub use crate::device::fake::FakeNet;
pub use crate::device::sysfs::testtree::Tree;
pub use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn n(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

pub fn lag(vfs: u32) -> Lag {
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

pub fn quick() -> Timeouts {
    Timeouts {
        vfs: Duration::from_secs(5),
        representors: Duration::from_secs(2),
        lock: Duration::from_millis(300),
        bind: Duration::from_secs(5),
        budget: Budget::unlimited(),
    }
}
/// A fake kernel thread acting on the fake tree like sysfs does: `sriov_numvfs` creates or
/// removes VFs (bound to `driver` when autoprobe is 1), `unbind`/`bind`/`drivers_probe`
/// move `driver` links.
pub struct FakeKernel {
    stop: Arc<AtomicBool>,
    h: Option<std::thread::JoinHandle<()>>,
}

impl FakeKernel {
    pub fn spawn(root: &Path, pf_devs: &[String], driver: &str) -> Self {
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
                            std::os::unix::fs::symlink(&vf, d.join(format!("virtfn{i}"))).unwrap();
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
pub fn nic(numvfs: u32, drv: Option<&str>) -> (Tree, Vec<String>) {
    let t = Tree::new();
    let a = t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), numvfs, drv);
    let b = t.pci_pf("ens3f1", "0000:37:00.1", 5, Some(8), numvfs, drv);
    t.driver("pci", "mlx5_core");
    (t, vec![a, b])
}
/// The seed's multi-NIC `SRIOV_PFS`: two cards' ports listed interleaved in one LAG.
pub fn two_nic_lag(nic: &Tree, listed: &[&str]) -> Lag {
    nic.pci_pf("ens4f0", "0000:3b:00.0", 6, Some(8), 0, None);
    nic.pci_pf("ens4f1", "0000:3b:00.1", 7, Some(8), 0, None);
    let mut l = lag(2);
    l.pfs = listed.iter().map(|p| n(p)).collect();
    l
}

/// The record of a completed early stage on ens3f0, VF i last bound to `drivers[i]`.
pub fn state_for_rebind(t: &Tree, drivers: &[Option<&str>]) {
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

/// The PCI handle of the fake NIC's first port (the state file's key).
pub fn net_handle() -> Handle {
    Handle {
        bus: "pci".into(),
        dev: "0000:37:00.0".into(),
    }
}
