//! Pairing the PFs of a multi-NIC `/etc/sysconfig/sriov` at run time.
//!
//! The seed's scripts take any number of PFs in `SRIOV_PFS` (two NICs: four ports). vflag keeps
//! them as one [`Lag`] (the generator cannot see devices) and, when a stage, `status` or `check`
//! runs, narrows it to the PF and the other listed port of *its own* NIC: the same NIC identity
//! that names the per-NIC lock ([`nic_id`]: PCI `dddd:bb:dd`, else bus and parent device, e.g.
//! the two ports of one netdevsim device). A native `[lag]` has at most two PFs and is used as
//! it is, without reading sysfs.

use crate::config::{Lag, Plan};
use crate::device::sysfs::{self, Pf};
use crate::names::IfName;
use crate::paths::Root;
use std::time::{Duration, Instant};

/// How long a stage waits for a listed PF that is not there yet (udev may still be renaming
/// the other port of the NIC) before it refuses a PF without a partner.
pub const PARTNER_WAIT: Duration = Duration::from_secs(10);

/// The NIC a PF belongs to: the PCI slot (`dddd:bb:dd`, both functions of a card) for PCI
/// devices, else `<bus>-<device>` (the ports of one netdevsim device share their device).
pub fn nic_id(pf: &Pf) -> String {
    match pf.pci_addr() {
        Some(a) => a.slot(),
        None => format!("{}-{}", pf.bus, pf.dev_name),
    }
}

fn names(pfs: &[IfName]) -> String {
    pfs.iter().map(IfName::as_str).collect::<Vec<_>>().join(" ")
}

/// One look at sysfs. `Err((message, some_listed_pf_absent))`.
fn partner_once(root: &Root, lag: &Lag, pf: &IfName) -> Result<IfName, (String, bool)> {
    let me = Pf::open(root, pf).map_err(|e| (format!("cannot find its NIC: {e}"), false))?;
    let mine = nic_id(&me);
    let mut found = Vec::new();
    let mut absent = Vec::new();
    for other in lag.pfs.iter().filter(|p| *p != pf) {
        match Pf::open(root, other) {
            Ok(o) if nic_id(&o) == mine => found.push(other.clone()),
            Ok(_) => {}
            Err(_) => absent.push(other.clone()),
        }
    }
    let listed = format!("listed in SRIOV_PFS ({})", lag.source.display());
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err((
            format!(
                "no other port of its NIC ({mine}) is {listed}; listed: {}{}; VF-LAG needs both ports of one NIC",
                names(&lag.pfs),
                if absent.is_empty() {
                    String::new()
                } else {
                    format!(" (not present: {})", names(&absent))
                }
            ),
            !absent.is_empty(),
        )),
        _ => Err((
            format!(
                "{} other ports of its NIC ({mine}) are {listed}: {}; a LAG bonds exactly two ports",
                found.len(),
                names(&found)
            ),
            false,
        )),
    }
}

/// The PF listed with `pf` that is on the same NIC. A LAG of one PF has none; a LAG of two is
/// taken as configured (checked elsewhere); for more, sysfs decides, and a PF with no partner
/// (or with two) is an error. Waits up to `wait` while some listed PF is absent.
pub fn partner(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    wait: Duration,
) -> Result<Option<IfName>, String> {
    if lag.pfs.len() <= 2 {
        return Ok(lag.pfs.iter().find(|p| *p != pf).cloned());
    }
    let start = Instant::now();
    loop {
        match partner_once(root, lag, pf) {
            Ok(p) => return Ok(Some(p)),
            Err((_, true)) if start.elapsed() < wait => std::thread::sleep(sysfs::POLL_INTERVAL),
            Err((msg, _)) => return Err(msg),
        }
    }
}

/// The LAG as `pf`'s stages see it: for more than two listed PFs, narrowed to `pf` and its
/// partner (in the order listed). Otherwise (or for a PF not in the LAG) unchanged.
pub fn resolve(root: &Root, lag: &Lag, pf: &IfName, wait: Duration) -> Result<Lag, String> {
    if lag.pfs.len() <= 2 || !lag.has_pf(pf) {
        return Ok(lag.clone());
    }
    let other = partner(root, lag, pf, wait)?;
    let mut l = lag.clone();
    l.pfs.retain(|p| p == pf || Some(p) == other.as_ref());
    Ok(l)
}

/// The plan with every LAG of more than two PFs split into per-NIC pairs (for `status`, a
/// snapshot: no waiting), and the PFs that could not be paired, with why. Those stay in the plan
/// as LAGs of their own, so that their state (missing, no VFs) is still reported.
pub fn split(root: &Root, plan: &Plan) -> (Plan, Vec<(IfName, String)>) {
    let mut out = Plan::default();
    let mut lone = Vec::new();
    for lag in &plan.lags {
        if lag.pfs.len() <= 2 {
            out.lags.push(lag.clone());
            continue;
        }
        for pf in &lag.pfs {
            if out.lags.iter().any(|l| l.has_pf(pf)) {
                continue;
            }
            match resolve(root, lag, pf, Duration::ZERO) {
                // Only a pair both sides agree on (never one PF in two LAGs).
                Ok(l) if !l.pfs.iter().any(|p| out.lags.iter().any(|o| o.has_pf(p))) => {
                    out.lags.push(l)
                }
                Ok(_) => lone.push((pf.clone(), "its NIC has more than two listed ports".into())),
                Err(e) => lone.push((pf.clone(), e)),
            }
            if !out.lags.iter().any(|l| l.has_pf(pf)) {
                let mut alone = lag.clone();
                alone.pfs = vec![pf.clone()];
                out.lags.push(alone);
            }
        }
    }
    (out, lone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EswitchMode, NetworkStack};
    use crate::device::sysfs::testtree::Tree;

    fn n(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }

    pub(crate) fn sysconfig_lag(pfs: &[&str]) -> Lag {
        Lag {
            name: "sysconfig".into(),
            source: "/etc/sysconfig/sriov".into(),
            pfs: pfs.iter().map(|p| n(p)).collect(),
            vfs: 2,
            pf_channels: None,
            representor_channels: None,
            eswitch: EswitchMode::Switchdev,
            network_stack: NetworkStack::Auto,
            before: vec![],
            device_timeout: Duration::from_secs(1),
            lag_timeout: Duration::from_secs(1),
            setup_timeout_max: Duration::from_secs(300),
            flow_steering_mode: None,
            lag_port_select_mode: None,
            representor_names: false,
        }
    }

    /// Two dual-port PCI NICs: ens3f* on 0000:37:00, ens4f* on 0000:3b:00.
    fn two_nics() -> Tree {
        let t = Tree::new();
        t.pci_pf("ens3f0", "0000:37:00.0", 4, Some(8), 0, None);
        t.pci_pf("ens3f1", "0000:37:00.1", 5, Some(8), 0, None);
        t.pci_pf("ens4f0", "0000:3b:00.0", 6, Some(8), 0, None);
        t.pci_pf("ens4f1", "0000:3b:00.1", 7, Some(8), 0, None);
        t
    }

    fn pfs(l: &Lag) -> Vec<&str> {
        l.pfs.iter().map(IfName::as_str).collect()
    }

    #[test]
    fn interleaved_ports_pair_per_nic() {
        let t = two_nics();
        let lag = sysconfig_lag(&["ens3f0", "ens4f0", "ens3f1", "ens4f1"]);
        let r = |p| resolve(&t.root(), &lag, &n(p), Duration::ZERO).unwrap();
        assert_eq!(pfs(&r("ens3f0")), ["ens3f0", "ens3f1"]);
        assert_eq!(pfs(&r("ens3f1")), ["ens3f0", "ens3f1"]);
        assert_eq!(pfs(&r("ens4f0")), ["ens4f0", "ens4f1"]);
        assert_eq!(pfs(&r("ens4f1")), ["ens4f0", "ens4f1"]);
        let (plan, lone) = split(&t.root(), &Plan { lags: vec![lag] });
        assert!(lone.is_empty(), "{lone:?}");
        let pairs: Vec<Vec<&str>> = plan.lags.iter().map(pfs).collect();
        assert_eq!(pairs, [["ens3f0", "ens3f1"], ["ens4f0", "ens4f1"]]);
    }

    #[test]
    fn a_port_without_partner_is_refused_alone() {
        let t = two_nics();
        let lag = sysconfig_lag(&["ens3f0", "ens3f1", "ens4f0"]);
        let e = resolve(&t.root(), &lag, &n("ens4f0"), Duration::ZERO).unwrap_err();
        assert_eq!(
            e,
            "no other port of its NIC (0000:3b:00) is listed in SRIOV_PFS (/etc/sysconfig/sriov); listed: ens3f0 ens3f1 ens4f0; VF-LAG needs both ports of one NIC"
        );
        let ok = resolve(&t.root(), &lag, &n("ens3f1"), Duration::ZERO).unwrap();
        assert_eq!(pfs(&ok), ["ens3f0", "ens3f1"]);
        let (plan, lone) = split(&t.root(), &Plan { lags: vec![lag] });
        let lags: Vec<Vec<&str>> = plan.lags.iter().map(pfs).collect();
        assert_eq!(lags, [vec!["ens3f0", "ens3f1"], vec!["ens4f0"]]);
        assert_eq!(lone.len(), 1);
        assert_eq!(lone[0].0.as_str(), "ens4f0");
    }

    #[test]
    fn absent_partner_is_named_and_waited_for_boundedly() {
        let t = two_nics();
        let lag = sysconfig_lag(&["ens3f0", "ens3f1", "ens4f0", "ens9f1"]);
        let start = Instant::now();
        let e = resolve(&t.root(), &lag, &n("ens4f0"), Duration::from_millis(300)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(
            e.ends_with("(not present: ens9f1); VF-LAG needs both ports of one NIC"),
            "{e}"
        );
        // A PF whose partner is there does not wait for the absent one.
        let start = Instant::now();
        resolve(&t.root(), &lag, &n("ens3f0"), Duration::from_secs(5)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn three_ports_of_one_nic_are_refused() {
        let t = two_nics();
        t.pci_pf("ens3f2", "0000:37:00.2", 8, Some(8), 0, None);
        let lag = sysconfig_lag(&["ens3f0", "ens3f1", "ens3f2"]);
        let e = resolve(&t.root(), &lag, &n("ens3f0"), Duration::ZERO).unwrap_err();
        assert!(
            e.starts_with("2 other ports of its NIC (0000:37:00)"),
            "{e}"
        );
    }

    #[test]
    fn netdevsim_ports_pair_by_device() {
        let t = Tree::new();
        for (name, dev, idx) in [
            ("eni10np1", "netdevsim10", 4),
            ("eni11np1", "netdevsim11", 5),
            ("eni10np2", "netdevsim10", 6),
            ("eni11np2", "netdevsim11", 7),
        ] {
            let d = format!("sys/devices/netdevsim/{dev}");
            t.link(&format!("{d}/subsystem"), "sys/bus/netdevsim");
            t.netdev(name, idx, Some(&d));
        }
        let lag = sysconfig_lag(&["eni10np1", "eni11np1", "eni10np2", "eni11np2"]);
        let l = resolve(&t.root(), &lag, &n("eni11np2"), Duration::ZERO).unwrap();
        assert_eq!(pfs(&l), ["eni11np1", "eni11np2"]);
    }

    #[test]
    fn two_listed_pfs_are_taken_as_configured() {
        // No sysfs at all: a native LAG is never narrowed or probed.
        let t = Tree::new();
        let lag = sysconfig_lag(&["ens3f0", "ens4f0"]);
        assert_eq!(
            resolve(&t.root(), &lag, &n("ens3f0"), Duration::ZERO).unwrap(),
            lag
        );
        assert_eq!(
            partner(&t.root(), &lag, &n("ens4f0"), Duration::ZERO).unwrap(),
            Some(n("ens3f0"))
        );
    }
}
