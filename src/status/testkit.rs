//! Test-only: fake sysfs trees of a healthy host (observed through the real sysfs readers)
//! plus netlink answers supplied as data. These prove vflag's verdicts and hints; what a real
//! kernel answers over netlink is the VM test bed's job.

pub use super::observe::*;
pub use super::*;
pub use crate::config::{EswitchMode as ConfEswitch, Lag, NetworkStack, Ovs};
pub use crate::device::devlink::EswitchMode;
pub use crate::device::ethtool::{Channels, Feature};
pub use crate::device::fake::FakeNet;
pub use crate::device::sysfs::testtree::Tree;
pub use crate::kernlog;

const SW: &str = "b8599f0001020304";

pub fn n(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

pub fn lag(eswitch: ConfEswitch) -> Lag {
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

pub fn loaded(l: Lag) -> Loaded {
    Loaded {
        plan: crate::config::Plan { lags: vec![l] },
        ovs: Ovs::default(),
        ..Loaded::default()
    }
}

/// Two mlx5 PFs of one NIC, 2 VFs each (bound to mlx5_core), 2 representors each, bonded
/// in 802.3ad, LAG active in debugfs: the healthy state after both stages.
pub fn healthy() -> Tree {
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

pub fn debugfs(t: &Tree, pci: &str, state: &str, ty: Option<&str>) {
    let d = format!("sys/kernel/debug/mlx5/{pci}/lag");
    t.write(&format!("{d}/state"), &format!("{state}\n"));
    if let Some(ty) = ty {
        t.write(&format!("{d}/type"), &format!("{ty}\n"));
        t.write(&format!("{d}/port_sel_mode"), "hash\n");
        t.write(&format!("{d}/flags"), "shared_fdb:on\n");
        t.write(&format!("{d}/members"), "0000:37:00.0\n0000:37:00.1\n");
    }
}

pub const ON: Feature = Feature {
    active: true,
    wanted: true,
    changeable: true,
};
pub const OFF: Feature = Feature {
    active: false,
    wanted: false,
    changeable: true,
};

pub fn ch(combined: u32, max: u32) -> Channels {
    Channels {
        combined: Some(combined),
        combined_max: Some(max),
    }
}

/// What devlink and ethtool would answer on the healthy host.
pub fn netlink_healthy(o: &mut PfObs) {
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

pub fn observe(t: &Tree, l: &Lag, pf: &str) -> PfObs {
    observe_pf(
        &t.root(),
        l,
        &n(pf),
        &mut Probe::new(&mut Offline(NO_NETLINK.into())),
    )
}

pub fn all(t: &Tree, l: &Lag, kmsg: &Seen<LagReport>, tweak: impl Fn(&mut PfObs)) -> Vec<Finding> {
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

pub fn get<'a>(f: &'a [Finding], check: &str, pf: &str) -> &'a Finding {
    f.iter()
        .find(|x| x.check == check && x.pf.as_ref().map(IfName::as_str).unwrap_or("") == pf)
        .unwrap_or_else(|| panic!("no {check} for {pf:?} in {f:#?}"))
}

pub fn no_kmsg() -> Seen<LagReport> {
    Err("not read".into())
}

pub fn kmsg(fixture: &str) -> Seen<LagReport> {
    Ok(kernlog::parse_lag(&fixture.lines().collect::<Vec<_>>()))
}
