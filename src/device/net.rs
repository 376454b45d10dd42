//! The netlink operations the stages need, behind one trait so the stage logic can be unit
//! tested with a recording fake; [`Kernel`] is the real thing (rtnetlink + devlink + ethtool).

use std::collections::HashMap;

use super::devlink::{Devlink, EswitchMode, Handle, ParamValue};
use super::ethtool::{Channels, Ethtool, Feature};
use super::repr::{self, Representor, Source};
use super::rtnl::{Link, Rtnl};
use super::sysfs::Pf;
use super::{Error, Result};

pub trait Net {
    fn link(&mut self, ifindex: u32) -> Result<Link>;
    fn eswitch_mode(&mut self, h: &Handle) -> Result<EswitchMode>;
    fn set_eswitch_mode(&mut self, h: &Handle, mode: EswitchMode) -> Result<()>;
    /// Returns the previous runtime value, `None` when it already had this value.
    fn set_param(&mut self, h: &Handle, name: &str, value: &str) -> Result<Option<ParamValue>>;
    fn representors(&mut self, pf: &Pf) -> Result<(Vec<Representor>, Source)>;
    fn feature(&mut self, ifindex: u32, name: &str) -> Result<Feature>;
    /// Feature `name` of every netdev: one dump instead of a request per device.
    fn feature_all(&mut self, name: &str) -> Result<HashMap<u32, Feature>>;
    /// Only the request: the kernel may accept it and leave the feature off.
    fn set_feature(&mut self, ifindex: u32, name: &str, on: bool) -> Result<()>;
    fn channels(&mut self, ifindex: u32) -> Result<Channels>;
    /// Channels of every netdev that has channel settings (the others are left out).
    fn channels_all(&mut self) -> Result<HashMap<u32, Channels>>;
    fn set_combined(&mut self, ifindex: u32, n: u32) -> Result<()>;
}

/// The running kernel. devlink is opened on first use; a kernel without it gives
/// [`Error::Unsupported`] from the devlink calls only.
pub struct Kernel {
    rtnl: Rtnl,
    ethtool: Option<Ethtool>,
    devlink: Option<Devlink>,
}

impl Kernel {
    pub fn open() -> Result<Self> {
        Ok(Kernel {
            rtnl: Rtnl::open()?,
            ethtool: None,
            devlink: None,
        })
    }

    fn devlink(&mut self) -> Result<&mut Devlink> {
        if self.devlink.is_none() {
            self.devlink = Some(Devlink::open()?);
        }
        Ok(self.devlink.as_mut().expect("just opened"))
    }

    fn ethtool(&mut self) -> Result<&mut Ethtool> {
        if self.ethtool.is_none() {
            self.ethtool = Some(Ethtool::open()?);
        }
        Ok(self.ethtool.as_mut().expect("just opened"))
    }
}

impl Net for Kernel {
    fn link(&mut self, ifindex: u32) -> Result<Link> {
        self.rtnl.link(ifindex)
    }
    fn eswitch_mode(&mut self, h: &Handle) -> Result<EswitchMode> {
        self.devlink()?.eswitch_mode(h)
    }
    fn set_eswitch_mode(&mut self, h: &Handle, mode: EswitchMode) -> Result<()> {
        self.devlink()?.set_eswitch_mode(h, mode)
    }
    fn set_param(&mut self, h: &Handle, name: &str, value: &str) -> Result<Option<ParamValue>> {
        self.devlink()?.set_param(h, name, value)
    }
    fn representors(&mut self, pf: &Pf) -> Result<(Vec<Representor>, Source)> {
        let dl = match self.devlink() {
            Ok(d) => Some(d),
            Err(Error::Unsupported(_)) => None,
            Err(e) => return Err(e),
        };
        repr::find(pf, dl)
    }
    fn feature(&mut self, ifindex: u32, name: &str) -> Result<Feature> {
        self.ethtool()?.feature(ifindex, name)
    }
    fn feature_all(&mut self, name: &str) -> Result<HashMap<u32, Feature>> {
        self.ethtool()?.dump_feature(name)
    }
    fn set_feature(&mut self, ifindex: u32, name: &str, on: bool) -> Result<()> {
        self.ethtool()?.set_feature(ifindex, name, on)
    }
    fn channels(&mut self, ifindex: u32) -> Result<Channels> {
        self.ethtool()?.channels(ifindex)
    }
    fn channels_all(&mut self) -> Result<HashMap<u32, Channels>> {
        self.ethtool()?.dump_channels()
    }
    fn set_combined(&mut self, ifindex: u32, n: u32) -> Result<()> {
        self.ethtool()?.set_combined(ifindex, n)
    }
}

/// No kernel to ask: every netlink call fails with the reason (e.g. a test root, whose sysfs
/// the running kernel does not describe); representors come from sysfs alone.
pub struct Offline(pub String);

impl Offline {
    fn no<T>(&self) -> Result<T> {
        Err(Error::Unsupported(self.0.clone()))
    }
}

impl Net for Offline {
    fn link(&mut self, _: u32) -> Result<Link> {
        self.no()
    }
    fn eswitch_mode(&mut self, _: &Handle) -> Result<EswitchMode> {
        self.no()
    }
    fn set_eswitch_mode(&mut self, _: &Handle, _: EswitchMode) -> Result<()> {
        self.no()
    }
    fn set_param(&mut self, _: &Handle, _: &str, _: &str) -> Result<Option<ParamValue>> {
        self.no()
    }
    fn representors(&mut self, pf: &Pf) -> Result<(Vec<Representor>, Source)> {
        repr::find(pf, None)
    }
    fn feature(&mut self, _: u32, _: &str) -> Result<Feature> {
        self.no()
    }
    fn feature_all(&mut self, _: &str) -> Result<HashMap<u32, Feature>> {
        self.no()
    }
    fn set_feature(&mut self, _: u32, _: &str, _: bool) -> Result<()> {
        self.no()
    }
    fn channels(&mut self, _: u32) -> Result<Channels> {
        self.no()
    }
    fn channels_all(&mut self) -> Result<HashMap<u32, Channels>> {
        self.no()
    }
    fn set_combined(&mut self, _: u32, _: u32) -> Result<()> {
        self.no()
    }
}
