//! A recording fake of the netlink side ([`Net`]) for host tests of the stages and `status`.
//! Representors exist only in switchdev mode.

use super::devlink::{EswitchMode, Handle, ParamValue};
use super::ethtool::{Channels, Feature};
use super::net::Net;
use super::repr::{Representor, Source};
use super::rtnl::Link;
use super::sysfs::Pf;
use super::{Error as DevError, Result as DevResult};
use std::collections::HashMap;

/// Recording fake of the netlink side. Representors exist only in switchdev mode.
pub struct FakeNet {
    pub mode: EswitchMode,
    pub reps: Vec<Representor>,
    pub features: HashMap<u32, Feature>,
    pub channels: HashMap<u32, (u32, u32)>,
    pub slave: bool,
    pub calls: Vec<String>,
    /// ifindexes rtnetlink no longer knows (ENODEV).
    pub gone: Vec<u32>,
    /// Runs when switchdev is set (to change the fake tree like a driver would).
    pub on_switchdev: Option<Box<dyn FnMut()>>,
    /// devlink params this fake kernel does not have (EINVAL, as devlink answers).
    pub no_params: bool,
    /// Interface names by ifindex (rtnetlink's view); others are `if<N>`.
    pub names: HashMap<u32, String>,
    /// ifindexes the ethtool dumps leave out (created after them, say).
    pub undumped: Vec<u32>,
    /// ifindexes only the channels dump leaves out.
    pub channels_undumped: Vec<u32>,
    /// ifindexes whose driver accepts hw-tc-offload on and keeps it off.
    pub keeps_offload_off: Vec<u32>,
    /// Asked when switchdev is set: `true` refuses it like firmware that wants switchdev
    /// before the VFs (EINVAL, "Failed setting eswitch to offloads").
    pub refuse_switchdev: Option<Box<dyn FnMut() -> bool>>,
}

impl FakeNet {
    pub fn new(nreps: u32) -> Self {
        let mut f = FakeNet {
            mode: EswitchMode::Legacy,
            reps: (0..nreps)
                .map(|i| Representor {
                    vf: i,
                    ifindex: 50 + i,
                    name: format!("eth{i}"),
                    controller: None,
                })
                .collect(),
            features: HashMap::new(),
            channels: HashMap::new(),
            slave: false,
            calls: vec![],
            gone: vec![],
            on_switchdev: None,
            no_params: false,
            // The PFs of `nic()`.
            names: HashMap::from([(4, "ens3f0".to_string()), (5, "ens3f1".to_string())]),
            undumped: vec![],
            channels_undumped: vec![],
            keeps_offload_off: vec![],
            refuse_switchdev: None,
        };
        for idx in [4, 5].into_iter().chain(50..50 + nreps) {
            f.features.insert(
                idx,
                Feature {
                    active: false,
                    wanted: false,
                    changeable: true,
                },
            );
            f.channels.insert(idx, (8, if idx < 50 { 63 } else { 16 }));
        }
        f
    }
    pub fn writes(&self) -> Vec<&String> {
        self.calls.iter().filter(|c| c.starts_with("set")).collect()
    }
}

impl Net for FakeNet {
    fn link(&mut self, ifindex: u32) -> DevResult<Link> {
        if self.gone.contains(&ifindex) {
            return Err(DevError::Kernel {
                op: "get link".into(),
                errno: 19,
                extack: None,
            });
        }
        Ok(Link {
            index: ifindex,
            name: self
                .names
                .get(&ifindex)
                .cloned()
                .unwrap_or(format!("if{ifindex}")),
            flags: if self.slave { 0x801 } else { 0x1 },
            master: None,
            phys_port_name: None,
            phys_switch_id: None,
        })
    }
    fn eswitch_mode(&mut self, _h: &Handle) -> DevResult<EswitchMode> {
        Ok(self.mode)
    }
    fn set_eswitch_mode(&mut self, h: &Handle, mode: EswitchMode) -> DevResult<()> {
        self.calls.push(format!("set eswitch {h} {mode}"));
        if mode == EswitchMode::Switchdev && self.refuse_switchdev.as_mut().is_some_and(|f| f()) {
            self.calls.push("refused".into());
            return Err(DevError::Kernel {
                op: format!("devlink dev eswitch set {h} mode switchdev"),
                errno: 22,
                extack: Some("mlx5_core: Failed setting eswitch to offloads".into()),
            });
        }
        self.mode = mode;
        if let Some(f) = self.on_switchdev.as_mut() {
            f();
            self.gone.push(4);
        }
        Ok(())
    }
    fn set_param(&mut self, h: &Handle, name: &str, value: &str) -> DevResult<Option<ParamValue>> {
        if self.no_params {
            return Err(DevError::Kernel {
                op: format!("devlink dev param show {h} name {name}"),
                errno: 22,
                extack: Some("Requested parameter does not exist".into()),
            });
        }
        self.calls
            .push(format!("set param {h} {name}={value} in {}", self.mode));
        Ok(Some(ParamValue::Str("dmfs".into())))
    }
    fn representors(&mut self, _pf: &Pf) -> DevResult<(Vec<Representor>, Source)> {
        Ok(match self.mode {
            EswitchMode::Switchdev => (self.reps.clone(), Source::Devlink),
            _ => (vec![], Source::Devlink),
        })
    }
    fn feature(&mut self, ifindex: u32, _name: &str) -> DevResult<Feature> {
        self.calls.push(format!("get offload #{ifindex}"));
        Ok(self.features[&ifindex])
    }
    fn feature_all(&mut self, _name: &str) -> DevResult<HashMap<u32, Feature>> {
        self.calls.push("dump offload".into());
        let mut all = self.features.clone();
        all.retain(|i, _| !self.undumped.contains(i));
        Ok(all)
    }
    fn set_feature(&mut self, ifindex: u32, _name: &str, on: bool) -> DevResult<()> {
        self.calls.push(format!("set offload #{ifindex} {on}"));
        let keeps_off = self.keeps_offload_off.contains(&ifindex);
        let f = self.features.get_mut(&ifindex).unwrap();
        if f.changeable {
            f.wanted = on;
            f.active = on && !keeps_off;
        }
        Ok(())
    }
    fn channels(&mut self, ifindex: u32) -> DevResult<Channels> {
        self.calls.push(format!("get channels #{ifindex}"));
        let (c, m) = self.channels[&ifindex];
        Ok(Channels {
            combined: Some(c),
            combined_max: Some(m),
        })
    }
    fn channels_all(&mut self) -> DevResult<HashMap<u32, Channels>> {
        self.calls.push("dump channels".into());
        Ok(self
            .channels
            .iter()
            .filter(|(i, _)| !self.undumped.contains(i) && !self.channels_undumped.contains(i))
            .map(|(i, (c, m))| {
                (
                    *i,
                    Channels {
                        combined: Some(*c),
                        combined_max: Some(*m),
                    },
                )
            })
            .collect())
    }
    fn set_combined(&mut self, ifindex: u32, n: u32) -> DevResult<()> {
        self.calls.push(format!("set channels #{ifindex} {n}"));
        self.channels.get_mut(&ifindex).unwrap().0 = n;
        Ok(())
    }
}
