//! Pre-flight checks: kernel command line / IOMMU, and per PF the firmware and NIC facts that
//! VF-LAG needs. Run by `vflag check` (by hand, before a reboot) and as the first step of each
//! `vflag setup` (`vflag@<pf>.service`, one process) so that a failing check stops that PF's
//! set-up — and only that — with the reason and the fix in `systemctl status`.

use crate::cmdline::Cmdline;
use crate::config::{EswitchMode, Lag};
use crate::names::IfName;
use crate::paths::Root;
use std::path::PathBuf;

/// PCI vendor ID of Mellanox/NVIDIA networking.
pub const MELLANOX: u16 = 0x15b3;
/// PF device IDs that support VF-LAG (ConnectX-5 and later, BlueField-2/3).
pub const VF_LAG_DEVICES: &[(u16, &str)] = &[
    (0x1017, "ConnectX-5"),
    (0x1019, "ConnectX-5 Ex"),
    (0x101b, "ConnectX-6"),
    (0x101d, "ConnectX-6 Dx"),
    (0x101f, "ConnectX-6 Lx"),
    (0x1021, "ConnectX-7"),
    (0x1023, "ConnectX-8"),
    (0xa2d6, "BlueField-2"),
    (0xa2dc, "BlueField-3"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    /// VF-LAG may not activate, but setting up is still safe and useful.
    Warn,
    /// Setting up this PF is pointless or unsafe: the stage must not run.
    Fail,
    /// Not applicable to this device (e.g. IOMMU for a non-PCI test device).
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub pf: Option<IfName>,
    pub outcome: Outcome,
    pub detail: String,
    /// What to do about it (kernel parameter, mlxconfig command, config key).
    pub hint: Option<String>,
}

impl Finding {
    pub(crate) fn new(
        check: &'static str,
        pf: Option<&IfName>,
        outcome: Outcome,
        detail: String,
    ) -> Self {
        Finding {
            check,
            pf: pf.cloned(),
            outcome,
            detail,
            hint: None,
        }
    }
    pub(crate) fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
}

/// Facts about one PF read from sysfs (re-rooted): everything the checks need.
#[derive(Debug, Default)]
struct PfFacts {
    exists: bool,
    net_type: Option<u32>,
    /// The PF's device directory (`/sys/class/net/<pf>/device` resolved).
    device: Option<PathBuf>,
    bus: Option<String>,
    driver: Option<String>,
    vendor: Option<u16>,
    device_id: Option<u16>,
    totalvfs: Option<u32>,
    has_numvfs: bool,
    pci: Option<crate::device::sysfs::PciAddr>,
}

fn facts(root: &Root, pf: &IfName) -> PfFacts {
    use crate::device::{sysfs, Error};
    let dev = match sysfs::Pf::open(root, pf) {
        Ok(dev) => dev,
        Err(Error::NotFound(_)) => return PfFacts::default(),
        // A netdev without a parent device (bond, veth...) exists but is no PF.
        Err(_) => {
            return PfFacts {
                exists: true,
                ..PfFacts::default()
            }
        }
    };
    let ids = dev.pci_ids().ok().flatten();
    PfFacts {
        exists: true,
        net_type: sysfs::netdev_attr(root, pf.as_str(), "type")
            .ok()
            .flatten()
            .and_then(|t| t.parse().ok()),
        driver: sysfs::link_basename(&dev.dev_dir.join("driver"))
            .ok()
            .flatten(),
        vendor: ids.map(|(v, _)| v),
        device_id: ids.map(|(_, d)| d),
        totalvfs: dev.totalvfs().ok().flatten(),
        has_numvfs: dev.numvfs().ok().flatten().is_some(),
        bus: Some(dev.bus.clone()),
        pci: dev.pci_addr(),
        device: Some(dev.dev_dir),
    }
}

/// Kernel command line and IOMMU. Only PCI PFs need an IOMMU (VFIO passes their VFs to VMs).
pub fn kernel(root: &Root, cmdline: &Cmdline, any_pci: bool) -> Vec<Finding> {
    let fix = "add intel_iommu=on iommu=pt (Intel) or amd_iommu=on iommu=pt (AMD) to the kernel command line (GRUB_CMDLINE_LINUX), enable VT-d / AMD-Vi in the BIOS, and reboot";
    if !any_pci {
        return vec![Finding::new(
            "iommu",
            None,
            Outcome::Skip,
            "the PF is not a PCI device; an IOMMU is only needed to pass PCI VFs to VMs".into(),
        )];
    }
    let mut out = Vec::new();
    let active = crate::device::sysfs::iommu_active(root);
    let on = ["intel_iommu", "amd_iommu"]
        .iter()
        .find(|k| cmdline.value(k) == Some("on"));
    let pt = cmdline.value("iommu") == Some("pt");
    out.push(if active {
        Finding::new(
            "iommu",
            None,
            Outcome::Pass,
            "an IOMMU is active (/sys/class/iommu)".into(),
        )
    } else {
        Finding::new(
            "iommu",
            None,
            Outcome::Fail,
            "no IOMMU is active (/sys/class/iommu is empty): VFs cannot be passed to VMs".into(),
        )
        .hint(fix)
    });
    out.push(match (on, pt) {
        (Some(k), true) => Finding::new(
            "kernel-cmdline",
            None,
            Outcome::Pass,
            format!("{k}=on iommu=pt"),
        ),
        _ => Finding::new(
            "kernel-cmdline",
            None,
            if active { Outcome::Warn } else { Outcome::Fail },
            format!(
                "kernel command line lacks {}",
                [
                    on.is_none().then_some("intel_iommu=on/amd_iommu=on"),
                    (!pt).then_some("iommu=pt")
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" and ")
            ),
        )
        .hint(fix),
    });
    out
}

/// Firmware and NIC facts for one PF of `lag`.
pub fn pf(root: &Root, lag: &Lag, pf: &IfName) -> Vec<Finding> {
    let f = facts(root, pf);
    let p = Some(pf);
    if !f.exists {
        return vec![Finding::new("present", p, Outcome::Fail, format!("{pf} does not exist"))
            .hint("check the NIC is installed and its driver loaded (mlx5_core); check the interface name in the config")];
    }
    let mut out = vec![Finding::new(
        "present",
        p,
        Outcome::Pass,
        format!("{pf} exists"),
    )];
    out.push(match f.net_type {
        Some(1) => Finding::new("ethernet", p, Outcome::Pass, "link type Ethernet".into()),
        other => Finding::new("ethernet", p, Outcome::Fail, format!("link type is {other:?}, not Ethernet (1)"))
            .hint("put both ports in Ethernet mode: mlxconfig -d <device> set LINK_TYPE_P1=2 LINK_TYPE_P2=2, then reboot"),
    });
    out.push(match &f.driver {
        Some(d) => Finding::new("driver", p, Outcome::Pass, format!("driver {d} bound")),
        None => Finding::new(
            "driver",
            p,
            Outcome::Fail,
            "no driver bound to the PF's device".into(),
        ),
    });
    out.push(sriov(&f, lag, p));
    if lag.eswitch == EswitchMode::Switchdev {
        out.push(vf_lag_capable(&f, p));
    }
    out
}

/// Can the firmware give the VFs the config wants?
fn sriov(f: &PfFacts, lag: &Lag, p: Option<&IfName>) -> Finding {
    let mlx = format!(
        "mlxconfig -d {} set SRIOV_EN=1 NUM_OF_VFS={}, then reboot",
        pci_name(f),
        lag.vfs
    );
    match (f.totalvfs, f.has_numvfs) {
        (Some(t), _) if t >= lag.vfs => Finding::new(
            "sriov",
            p,
            Outcome::Pass,
            format!("SR-IOV: {t} VFs possible, {} wanted", lag.vfs),
        ),
        (Some(t), _) => Finding::new(
            "sriov",
            p,
            Outcome::Fail,
            format!("firmware allows {t} VFs, config wants {}", lag.vfs),
        )
        .hint(format!("{mlx}; or lower vfs in the config")),
        // PCI devices publish sriov_totalvfs with the SR-IOV capability; others (netdevsim) may not.
        (None, true) if f.bus.as_deref() != Some("pci") => Finding::new(
            "sriov",
            p,
            Outcome::Pass,
            "SR-IOV supported (no VF limit published)".into(),
        ),
        (None, _) => Finding::new(
            "sriov",
            p,
            Outcome::Fail,
            "SR-IOV is not enabled on this device".into(),
        )
        .hint(mlx),
    }
}

/// Is the PF's device one of the NICs that support VF-LAG (switchdev LAGs only)?
fn vf_lag_capable(f: &PfFacts, p: Option<&IfName>) -> Finding {
    match (f.vendor, f.device_id) {
        (Some(MELLANOX), Some(id)) => match VF_LAG_DEVICES.iter().find(|(d, _)| *d == id) {
            Some((_, name)) => Finding::new(
                "vf-lag-capable",
                p,
                Outcome::Pass,
                format!("{name} (15b3:{id:04x})"),
            ),
            None => Finding::new(
                "vf-lag-capable",
                p,
                Outcome::Warn,
                format!("15b3:{id:04x} does not support VF-LAG (ConnectX-5 or later needed)"),
            ),
        },
        (Some(v), Some(id)) => Finding::new(
            "vf-lag-capable",
            p,
            Outcome::Warn,
            format!("{v:04x}:{id:04x} is not a VF-LAG capable NVIDIA/Mellanox NIC"),
        ),
        _ => Finding::new(
            "vf-lag-capable",
            p,
            Outcome::Skip,
            format!("not a PCI device (bus {})", f.bus.as_deref().unwrap_or("?")),
        ),
    }
}

/// The two PFs of a switchdev LAG must be ports of one NIC: same PCI domain:bus:device.
pub fn same_nic(root: &Root, lag: &Lag) -> Option<Finding> {
    let [a, b] = lag.pfs.as_slice() else {
        return None;
    };
    if lag.eswitch != EswitchMode::Switchdev {
        return None;
    }
    let (fa, fb) = (facts(root, a), facts(root, b));
    if fa.device.is_none() || fb.device.is_none() {
        return None;
    }
    let (Some(pa), Some(pb)) = (&fa.pci, &fb.pci) else {
        return Some(Finding::new(
            "same-nic",
            None,
            Outcome::Skip,
            format!("{a} and {b} are not PCI devices"),
        ));
    };
    Some(if pa.same_slot(pb) {
        Finding::new(
            "same-nic",
            None,
            Outcome::Pass,
            format!("{a} and {b} are ports of NIC {}", pa.slot()),
        )
    } else {
        Finding::new("same-nic", None, Outcome::Fail, format!("{a} ({}) and {b} ({}) are on different NICs; VF-LAG bonds the two ports of one NIC", pa.slot(), pb.slot()))
            .hint("list the two ports of one NIC in pfs (functions .0 and .1 of the same PCI device)")
    })
}

/// A PF of a multi-NIC `SRIOV_PFS` that has no partner on its NIC (see [`crate::pairing`]).
pub fn unpaired(pf: &IfName, why: &str) -> Finding {
    Finding::new("same-nic", Some(pf), Outcome::Fail, format!("{pf}: {why}"))
        .hint("list both ports of each NIC in SRIOV_PFS")
}

/// Other owners of the NIC enabled host-wide: the old mlnx-vflag units (fail) and OFED's
/// services (warn). See [`crate::owners`].
pub fn host(root: &Root) -> Vec<Finding> {
    crate::owners::host(root)
}

/// Firmware settings as Mellanox's `mlxconfig` reports them (`-e q`: the "Next Boot" column is
/// the last number on each line), where that tool is installed. Never required: without it, or
/// when it cannot read the device (it needs more privilege than the boot units have), nothing
/// is reported. Only `vflag check` by hand runs it; the boot relies on sysfs.
pub fn mlxconfig(root: &Root, pf_name: &IfName, lag: &Lag, tool: &std::path::Path) -> Vec<Finding> {
    let Some(dev) = crate::device::sysfs::netdev_device(root, pf_name.as_str()) else {
        return vec![];
    };
    let Some(pci) = dev.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return vec![];
    };
    match query_mlxconfig(tool, &pci, MLXCONFIG_TIMEOUT) {
        Ok(Some(text)) => mlxconfig_findings(pf_name, lag, &pci, &text),
        Ok(None) => vec![],
        Err(why) => vec![Finding::new("mlxconfig", Some(pf_name), Outcome::Warn, why)
            .hint("run `mlxconfig -d <pci> -e q` by hand; the firmware tools may be hung or waiting for the device")],
    }
}

/// How long `mlxconfig` may take to answer (it reads the firmware through the PCI device).
pub const MLXCONFIG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `mlxconfig -d <pci> -e q ...`'s output; `Ok(None)` when it fails (not installed, no access);
/// `Err` when it did not answer within `timeout` (it is killed).
pub fn query_mlxconfig(
    tool: &std::path::Path,
    pci: &str,
    timeout: std::time::Duration,
) -> Result<Option<String>, String> {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let child = Command::new(tool)
        .args([
            "-d",
            pci,
            "-e",
            "q",
            "SRIOV_EN",
            "NUM_OF_VFS",
            "LINK_TYPE_P1",
            "LINK_TYPE_P2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return Ok(None);
    };
    // Read on a thread so a chatty tool never blocks on a full pipe while we wait.
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut text);
        }
        text
    });
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < timeout => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not answer within {} s (killed)",
                    tool.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "mlxconfig".into()),
                    timeout.as_secs()
                ));
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    Ok(status.success().then_some(text))
}

/// Judge `mlxconfig -e q` output (pure, for tests).
pub fn mlxconfig_findings(pf: &IfName, lag: &Lag, pci: &str, text: &str) -> Vec<Finding> {
    let value = |key: &str| -> Option<u32> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))?;
        let last = line.split_whitespace().last()?;
        // "True(1)", "ETH(2)", "8"
        let num = last
            .rsplit_once('(')
            .map(|(_, n)| n.trim_end_matches(')'))
            .unwrap_or(last);
        num.parse().ok()
    };
    let p = Some(pf);
    let mut out = vec![];
    if let (Some(en), Some(n)) = (value("SRIOV_EN"), value("NUM_OF_VFS")) {
        out.push(if en == 1 && n >= lag.vfs {
            Finding::new(
                "mlxconfig-sriov",
                p,
                Outcome::Pass,
                format!("SRIOV_EN=1 NUM_OF_VFS={n} (next boot)"),
            )
        } else {
            Finding::new(
                "mlxconfig-sriov",
                p,
                Outcome::Fail,
                format!(
                    "firmware SRIOV_EN={en} NUM_OF_VFS={n} (next boot), config wants {} VFs",
                    lag.vfs
                ),
            )
            .hint(format!(
                "mlxconfig -d {pci} set SRIOV_EN=1 NUM_OF_VFS={}, then reboot",
                lag.vfs
            ))
        });
    }
    let links: Vec<u32> = ["LINK_TYPE_P1", "LINK_TYPE_P2"]
        .iter()
        .filter_map(|k| value(k))
        .collect();
    if !links.is_empty() {
        out.push(if links.iter().all(|l| *l == 2) {
            Finding::new(
                "mlxconfig-link",
                p,
                Outcome::Pass,
                "both ports Ethernet (LINK_TYPE 2)".into(),
            )
        } else {
            Finding::new(
                "mlxconfig-link",
                p,
                Outcome::Fail,
                format!("firmware link types {links:?} (2 = Ethernet)"),
            )
            .hint(format!(
                "mlxconfig -d {pci} set LINK_TYPE_P1=2 LINK_TYPE_P2=2, then reboot"
            ))
        });
    }
    out
}

/// All checks for one PF (kernel, NIC, LAG), as run before its early stage.
pub fn for_pf(root: &Root, cmdline: &Cmdline, lag: &Lag, pf_name: &IfName) -> Vec<Finding> {
    let f = facts(root, pf_name);
    // A missing PF counts as PCI here: its own check reports it missing.
    let mut out = kernel(root, cmdline, f.bus.as_deref().is_none_or(|b| b == "pci"));
    out.extend(pf(root, lag, pf_name));
    out.extend(same_nic(root, lag));
    out.extend(host(root));
    // Other tools that set this PF's VF count or eSwitch mode (NetworkManager, .link, netplan,
    // udev rules, units): a second owner stops the set-up (nothing changed).
    out.extend(crate::owners::for_pf(root, pf_name));
    out
}

/// Every check for `targets` (what `vflag check` runs, and the set-up's first step): a
/// multi-NIC `SRIOV_PFS` PF is checked with the other port of its own NIC; host-wide findings
/// are reported once. `mlxconfig`: also ask that tool (by hand only).
pub fn run(
    root: &Root,
    cmdline: &Cmdline,
    targets: &[(&Lag, IfName)],
    mlxconfig: Option<&std::path::Path>,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let mut paired: Vec<(Lag, IfName)> = Vec::new();
    for (lag, pf) in targets {
        match crate::pairing::resolve(root, lag, pf, std::time::Duration::ZERO) {
            Ok(l) => paired.push((l, pf.clone())),
            Err(e) => {
                // Still run its own checks (present, firmware...): they may say why.
                findings.push(unpaired(pf, &e));
                paired.push(((*lag).clone(), pf.clone()));
            }
        }
    }
    for (lag, pf) in &paired {
        let mut found = for_pf(root, cmdline, lag, pf);
        if let Some(tool) = mlxconfig {
            found.extend(self::mlxconfig(root, pf, lag, tool));
        }
        for f in found {
            if !findings.contains(&f) {
                findings.push(f);
            }
        }
    }
    findings
}

/// Journal lines for failed checks (one each, with the fix) and the first one as the unit's
/// STATUS=. `true` when a check failed.
pub fn report_failures(findings: &[Finding]) -> bool {
    let failed: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.outcome == Outcome::Fail)
        .collect();
    for f in &failed {
        let pf =
            f.pf.as_ref()
                .map(|p| format!(" on {p}"))
                .unwrap_or_default();
        let hint = f
            .hint
            .as_ref()
            .map(|h| format!("; fix: {h}"))
            .unwrap_or_default();
        tracing::error!(
            check = f.check,
            "check {} failed{pf}: {}{hint}",
            f.check,
            f.detail
        );
    }
    if let Some(f) = failed.first() {
        crate::log::status(&format!("check {} failed: {}", f.check, f.detail));
    }
    !failed.is_empty()
}

fn pci_name(f: &PfFacts) -> String {
    match (&f.bus, &f.device) {
        (Some(b), Some(d)) if b == "pci" => d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => "<device>".into(),
    }
}

#[cfg(test)]
mod tests {
    /// A hung mlxconfig is killed after the timeout and reported, not waited for.
    #[test]
    fn mlxconfig_that_does_not_answer_is_killed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("mlxconfig");
        std::fs::write(&tool, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let start = std::time::Instant::now();
        let r =
            super::query_mlxconfig(&tool, "0000:37:00.0", std::time::Duration::from_millis(300));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            r,
            Err("mlxconfig did not answer within 0 s (killed)".to_string())
        );
        std::fs::write(&tool, "#!/bin/sh\necho 'SRIOV_EN True(1)'\n").unwrap();
        let r = super::query_mlxconfig(&tool, "0000:37:00.0", std::time::Duration::from_secs(5));
        assert_eq!(r, Ok(Some("SRIOV_EN True(1)\n".to_string())));
    }

    use super::*;
    use std::time::Duration;

    fn lag(pfs: &[&str], vfs: u32) -> Lag {
        Lag {
            name: "bond0".into(),
            source: "/etc/vflag/vflag.conf".into(),
            pfs: pfs.iter().map(|p| IfName::new(p).unwrap()).collect(),
            vfs,
            pf_channels: None,
            representor_channels: None,
            eswitch: EswitchMode::Switchdev,
            network_stack: crate::config::NetworkStack::Auto,
            before: vec![],
            device_timeout: Duration::from_secs(30),
            lag_timeout: Duration::from_secs(30),
            setup_timeout_max: Duration::from_secs(300),
            flow_steering_mode: None,
            lag_port_select_mode: None,
            representor_names: false,
        }
    }

    /// A fake PCI PF: /sys/devices/pci0000:00/<addr> with vendor/device/sriov files.
    fn pci_pf(root: &std::path::Path, name: &str, addr: &str, device: &str, totalvfs: Option<u32>) {
        let dev = root.join(format!("sys/devices/pci0000:00/{addr}"));
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(root.join("sys/bus/pci/drivers/mlx5_core")).unwrap();
        std::os::unix::fs::symlink(root.join("sys/bus/pci"), dev.join("subsystem")).unwrap();
        std::os::unix::fs::symlink(
            root.join("sys/bus/pci/drivers/mlx5_core"),
            dev.join("driver"),
        )
        .unwrap();
        std::fs::write(dev.join("vendor"), "0x15b3\n").unwrap();
        std::fs::write(dev.join("device"), format!("{device}\n")).unwrap();
        std::fs::write(dev.join("sriov_numvfs"), "0\n").unwrap();
        if let Some(t) = totalvfs {
            std::fs::write(dev.join("sriov_totalvfs"), format!("{t}\n")).unwrap();
        }
        let net = root.join(format!("sys/class/net/{name}"));
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("type"), "1\n").unwrap();
        std::os::unix::fs::symlink(&dev, net.join("device")).unwrap();
    }

    fn outcome(f: &[Finding], check: &str) -> Outcome {
        f.iter()
            .find(|x| x.check == check)
            .unwrap_or_else(|| panic!("{check} missing: {f:?}"))
            .outcome
    }

    #[test]
    fn connectx5_pair_passes() {
        let d = tempfile::tempdir().unwrap();
        pci_pf(d.path(), "ens3f0", "0000:37:00.0", "0x1017", Some(8));
        pci_pf(d.path(), "ens3f1", "0000:37:00.1", "0x1017", Some(8));
        std::fs::create_dir_all(d.path().join("sys/class/iommu/dmar0")).unwrap();
        let root = Root::new(d.path());
        let l = lag(&["ens3f0", "ens3f1"], 8);
        let f = for_pf(
            &root,
            &Cmdline::parse("intel_iommu=on iommu=pt"),
            &l,
            &l.pfs[0],
        );
        assert!(f.iter().all(|x| x.outcome == Outcome::Pass), "{f:#?}");
    }

    #[test]
    fn failures_name_the_fix() {
        let d = tempfile::tempdir().unwrap();
        pci_pf(d.path(), "ens3f0", "0000:37:00.0", "0x1015", Some(4));
        pci_pf(d.path(), "ens4f0", "0000:5e:00.0", "0x1017", None);
        let root = Root::new(d.path());
        let l = lag(&["ens3f0", "ens4f0"], 8);
        let f = for_pf(&root, &Cmdline::parse("quiet"), &l, &l.pfs[0]);
        assert_eq!(outcome(&f, "iommu"), Outcome::Fail);
        assert_eq!(outcome(&f, "kernel-cmdline"), Outcome::Fail);
        assert_eq!(outcome(&f, "sriov"), Outcome::Fail);
        assert_eq!(outcome(&f, "vf-lag-capable"), Outcome::Warn);
        assert_eq!(outcome(&f, "same-nic"), Outcome::Fail);
        let sriov = f.iter().find(|x| x.check == "sriov").unwrap();
        assert!(sriov
            .hint
            .as_deref()
            .unwrap()
            .contains("mlxconfig -d 0000:37:00.0 set SRIOV_EN=1 NUM_OF_VFS=8"));
        let f = pf(&root, &l, &l.pfs[1]);
        assert_eq!(
            outcome(&f, "sriov"),
            Outcome::Fail,
            "PCI without sriov_totalvfs: SR-IOV off"
        );
        let f = pf(&root, &l, &IfName::new("ens9").unwrap());
        assert_eq!(outcome(&f, "present"), Outcome::Fail);
    }

    #[test]
    fn non_pci_devices_skip_iommu() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert_eq!(
            kernel(&root, &Cmdline::parse(""), false)[0].outcome,
            Outcome::Skip
        );
    }

    #[test]
    fn mlxconfig_query_is_judged() {
        let l = lag(&["ens3f0", "ens3f1"], 8);
        let pf = IfName::new("ens3f0").unwrap();
        let ok = "Device #1:\n\nConfigurations:                              Next Boot\n         SRIOV_EN                            True(1)\n         NUM_OF_VFS                          8\n         LINK_TYPE_P1                        ETH(2)\n         LINK_TYPE_P2                        ETH(2)\n";
        let f = mlxconfig_findings(&pf, &l, "0000:37:00.0", ok);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|x| x.outcome == Outcome::Pass), "{f:?}");
        let bad = ok.replace("True(1)", "False(0)").replace(
            "ETH(2)\n         LINK_TYPE_P2",
            "IB(1)\n         LINK_TYPE_P2",
        );
        let f = mlxconfig_findings(&pf, &l, "0000:37:00.0", &bad);
        assert!(f.iter().all(|x| x.outcome == Outcome::Fail), "{f:?}");
        assert!(f[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("mlxconfig -d 0000:37:00.0 set SRIOV_EN=1 NUM_OF_VFS=8"));
        assert!(mlxconfig_findings(&pf, &l, "x", "mlxconfig: no such device\n").is_empty());
    }

    /// Another owner of the PF's VFs (issue 17 part 4) fails the early stage's check; one that
    /// only reorders start-up warns.
    #[test]
    fn other_owner_of_the_pf_fails_the_check() {
        let d = tempfile::tempdir().unwrap();
        pci_pf(d.path(), "ens3f0", "0000:37:00.0", "0x1017", Some(8));
        pci_pf(d.path(), "ens3f1", "0000:37:00.1", "0x1017", Some(8));
        std::fs::create_dir_all(d.path().join("sys/class/iommu/dmar0")).unwrap();
        let nm = d.path().join("etc/NetworkManager/system-connections");
        std::fs::create_dir_all(&nm).unwrap();
        let profile = nm.join("sriov.nmconnection");
        std::fs::write(
            &profile,
            "[connection]\nid=sriov\ntype=ethernet\ninterface-name=ens3f1\n\n[sriov]\ntotal-vfs=8\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o600)).unwrap();
        let wants = d.path().join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink(
            "/etc/systemd/system/mlnx-vflag-early.service",
            wants.join("mlnx-vflag-early.service"),
        )
        .unwrap();
        let root = Root::new(d.path());
        let l = lag(&["ens3f0", "ens3f1"], 8);
        let cmdline = Cmdline::parse("intel_iommu=on iommu=pt");
        let f = for_pf(&root, &cmdline, &l, &l.pfs[1]);
        assert_eq!(outcome(&f, "owner-mlnx-vflag"), Outcome::Fail);
        assert_eq!(outcome(&f, "owner-nm"), Outcome::Fail);
        // The other PF has no profile: only the host-wide owner.
        let f = for_pf(&root, &cmdline, &l, &l.pfs[0]);
        assert_eq!(outcome(&f, "owner-mlnx-vflag"), Outcome::Fail);
        assert!(!f.iter().any(|x| x.check == "owner-nm"), "{f:#?}");
    }

    #[test]
    fn ofed_services_warned() {
        let d = tempfile::tempdir().unwrap();
        let w = d.path().join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&w).unwrap();
        std::fs::write(w.join("openibd.service"), "").unwrap();
        let f = host(&Root::new(d.path()));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].outcome, Outcome::Warn);
    }
}
