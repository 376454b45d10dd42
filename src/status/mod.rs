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

mod bond_lag;
mod judge;
mod observe;
mod ovs;
#[cfg(test)]
mod testkit;

pub use bond_lag::{judge_bond, judge_lag};
pub use judge::judge_pf;
pub use observe::{BondObs, PfObs, PortObs, Upper, VfObs};
pub use ovs::{judge_ovs, observe_ovs, parse_ovs_time, OvsObs, OvsPorts};

use crate::checks::{self, Finding, Outcome};
use crate::config::{EswitchMode as ConfEswitch, Lag, Loaded};
use crate::device::net::{Kernel, Net, Offline};
use crate::kernlog::{self, LagReport};
use crate::names::IfName;
use crate::paths::Root;
use observe::{observe_bond, observe_pf, Probe};
use std::time::{Duration, SystemTime};

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

// ------------------------------------------------------------------------------------------
// Entry points

/// `vflag status [pf...]`: findings for the given PFs (empty = every configured PF), then the
/// host-wide Open vSwitch checks.
pub fn collect(root: &Root, loaded: &Loaded, pfs: &[IfName]) -> Vec<Finding> {
    collect_with(root, loaded, pfs, &Options::for_root(root))
}

/// Where `vflag status` asks the kernel: the running one over netlink, or (a test root) none.
pub fn collect_with(root: &Root, loaded: &Loaded, pfs: &[IfName], opt: &Options) -> Vec<Finding> {
    let mut net: Box<dyn Net> = match opt.netlink {
        true => match Kernel::open() {
            Ok(k) => Box::new(k),
            Err(e) => Box::new(Offline(format!("netlink: {e}"))),
        },
        false => Box::new(Offline(NO_NETLINK.into())),
    };
    collect_on(root, loaded, pfs, opt, &mut *net)
}

const NO_NETLINK: &str =
    "netlink not asked: VFLAG_ROOT re-roots sysfs, the running kernel would describe other devices";

/// The collector, on a given device layer (the stages' fake one in host tests): the config,
/// then each LAG (observe, then judge), then Open vSwitch.
pub fn collect_on(
    root: &Root,
    loaded: &Loaded,
    pfs: &[IfName],
    opt: &Options,
    net: &mut dyn Net,
) -> Vec<Finding> {
    let mut out = config_findings(loaded, pfs);
    let mut c = Collector {
        cmdline: crate::cmdline::Cmdline::read(root),
        probe: Probe::new(net),
        kmsg: None,
        ports: OvsPorts::default(),
        want_offload: loaded.ovs.hw_offload,
    };
    // A multi-NIC SRIOV_PFS is judged per NIC, as its stages run it.
    let (plan, lone) = crate::pairing::split(root, &loaded.plan);
    for (p, why) in lone
        .iter()
        .filter(|(p, _)| pfs.is_empty() || pfs.contains(p))
    {
        out.push(checks::unpaired(p, why));
    }
    for lag in &plan.lags {
        collect_lag(root, lag, pfs, &mut c, &mut out);
    }
    let ovs = observe_ovs(root, &loaded.ovs.db_socket, opt.ovs_timeout);
    out.extend(judge_ovs(&ovs, c.want_offload, &c.ports, opt.now));
    out
}

/// The configuration itself: errors, vflag=0, nothing configured, PFs named but not configured.
fn config_findings(loaded: &Loaded, pfs: &[IfName]) -> Vec<Finding> {
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
    out
}

/// What the LAGs of one `status` run share.
struct Collector<'a> {
    cmdline: crate::cmdline::Cmdline,
    probe: Probe<'a>,
    /// The kernel log's LAG lines, read once if some LAG needs them.
    kmsg: Option<Seen<LagReport>>,
    /// Bonds and representors, which OVS ports may be.
    ports: OvsPorts,
    want_offload: bool,
}

/// One LAG's PFs (those of `pfs`, or all): observed, then judged, with the pre-flight checks
/// that would stop their early stage.
fn collect_lag(root: &Root, lag: &Lag, pfs: &[IfName], c: &mut Collector, out: &mut Vec<Finding>) {
    let chosen: Vec<&IfName> = lag
        .pfs
        .iter()
        .filter(|p| pfs.is_empty() || pfs.contains(p))
        .collect();
    if chosen.is_empty() {
        return;
    }
    c.want_offload |= lag.eswitch == ConfEswitch::Switchdev;
    let obs: Vec<PfObs> = chosen
        .iter()
        .map(|p| observe_pf(root, lag, p, &mut c.probe))
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
        c.ports.bonds.push(b.name.clone());
    }
    let need_kmsg = lag.eswitch == ConfEswitch::Switchdev
        && obs
            .iter()
            .any(|o| o.driver.as_deref() == Some("mlx5_core") && !matches!(o.debugfs, Ok(Some(_))));
    if need_kmsg && c.kmsg.is_none() {
        c.kmsg = Some(kernlog::kmsg_lag_report(root).map_err(|e| format!("/dev/kmsg: {e}")));
    }
    let no_kmsg: Seen<LagReport> = Err("not read".into());
    for o in &obs {
        out.extend(judge_pf(lag, o));
        if o.missing.is_none() {
            out.push(judge_lag(lag, o, c.kmsg.as_ref().unwrap_or(&no_kmsg)));
        }
        if let Ok((reps, _)) = &o.reps {
            c.ports
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
        for f in checks::for_pf(root, &c.cmdline, lag, p) {
            let failed = matches!(f.outcome, Outcome::Fail | Outcome::Warn);
            if failed && f.check != "present" && !out.contains(&f) {
                out.push(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::testkit::*;

    /// End to end through `collect_with` on a fake root: no netlink, no OVS, kmsg from a file.
    #[test]
    fn collect_on_a_fake_root_without_ovs() {
        let t = healthy();
        std::fs::remove_dir_all(t.p("sys/kernel/debug")).unwrap();
        t.write(
            "dev/kmsg",
            include_str!("../../tests/fixtures/status/kmsg-active.txt"),
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

    /// The netlink half on the device layer's recording fake (the stages' own): the eswitch
    /// from devlink, offload and channels from one dump each for all ports, and a port the
    /// channels dump leaves out asked on its own (as the stages do), not taken for "no
    /// channels".
    #[test]
    fn netlink_half_on_the_fake_device_layer() {
        let t = healthy();
        let l = loaded(lag(ConfEswitch::Switchdev));
        let opt = Options {
            netlink: true,
            ovs_timeout: OVS_TIMEOUT,
            now: SystemTime::now(),
        };
        let mut net = FakeNet::new(2);
        net.mode = EswitchMode::Switchdev;
        for i in [4, 50, 51] {
            net.features.get_mut(&i).unwrap().active = true;
        }
        net.channels.insert(4, (63, 63));
        net.channels.insert(50, (16, 16));
        net.channels.insert(51, (12, 16));
        net.channels_undumped = vec![51];
        let f = collect_on(&t.root(), &l, &[n("ens3f0")], &opt, &mut net);
        let e = get(&f, "eswitch", "ens3f0");
        assert_eq!(
            (e.outcome, e.detail.as_str()),
            (Outcome::Pass, "switchdev (devlink pci/0000:37:00.0)"),
            "{e:?}"
        );
        for check in ["pf-offload", "representors", "rep-offload", "pf-channels"] {
            assert_eq!(
                get(&f, check, "ens3f0").outcome,
                Outcome::Pass,
                "{check}: {f:#?}"
            );
        }
        // eth1 was missing from the channels dump: its own answer (12 of 16) is judged.
        let c = get(&f, "rep-channels", "ens3f0");
        assert_eq!(c.outcome, Outcome::Warn, "{c:?}");
        assert!(c.detail.contains("eth1 (VF 1)"), "{c:?}");
        let count = |call: &str| net.calls.iter().filter(|c| *c == call).count();
        assert_eq!((count("dump offload"), count("dump channels")), (1, 1));
        assert_eq!(count("get channels #51"), 1, "{:?}", net.calls);
        assert!(
            net.writes().is_empty(),
            "status only reads: {:?}",
            net.calls
        );

        // Offload off on one representor: that one is named.
        net.features.get_mut(&50).unwrap().active = false;
        let f = collect_on(&t.root(), &l, &[n("ens3f0")], &opt, &mut net);
        let r = get(&f, "rep-offload", "ens3f0");
        assert_ne!(r.outcome, Outcome::Pass, "{r:?}");
        assert!(r.detail.contains("eth0 (VF 0)"), "{r:?}");
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
}
