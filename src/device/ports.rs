//! hw-tc-offload and channels of many ports at once: one ethtool dump per setting, only the
//! changes sent. Shared by the early stage (which writes) and `status` (which only reads).

use super::ethtool::{Channels, Feature, HW_TC_OFFLOAD};
use super::net::Net;
use super::Result;
use nix::errno::Errno;
use std::collections::HashMap;
use tracing::info;

/// hw-tc-offload and channels of every netdev, read with one dump each. A device a dump left
/// out (too new for it, or a dump the kernel refused) is asked on its own; for channels that
/// is also how a device without channel settings gets its EOPNOTSUPP.
pub struct PortTables {
    offload: HashMap<u32, Feature>,
    channels: HashMap<u32, Channels>,
}

impl PortTables {
    /// Dumps what is asked for (`offload`, `channels`); the other table stays empty.
    pub fn read(net: &mut dyn Net, offload: bool, channels: bool) -> Self {
        Self::dump(net, offload, channels, true)
    }

    /// [`PortTables::read`] without the log line when a dump fails (`vflag status` prints
    /// only its findings).
    pub fn read_quietly(net: &mut dyn Net, offload: bool, channels: bool) -> Self {
        Self::dump(net, offload, channels, false)
    }

    fn dump(net: &mut dyn Net, offload: bool, channels: bool, say: bool) -> Self {
        let or_empty = |what: &str, e: super::Error| {
            // Correct either way, but one request per port again: say so.
            if say {
                info!("ethtool {what} dump failed ({e}); asking each device on its own");
            }
        };
        PortTables {
            offload: match offload {
                true => net.feature_all(HW_TC_OFFLOAD).unwrap_or_else(|e| {
                    or_empty("features", e);
                    HashMap::new()
                }),
                false => HashMap::new(),
            },
            channels: match channels {
                true => net.channels_all().unwrap_or_else(|e| {
                    or_empty("channels", e);
                    HashMap::new()
                }),
                false => HashMap::new(),
            },
        }
    }

    pub fn offload(&self, net: &mut dyn Net, idx: u32) -> Result<Feature> {
        match self.offload.get(&idx) {
            Some(f) => Ok(*f),
            None => net.feature(idx, HW_TC_OFFLOAD),
        }
    }

    pub fn channels(&self, net: &mut dyn Net, idx: u32) -> Result<Channels> {
        match self.channels.get(&idx) {
            Some(c) => Ok(*c),
            None => net.channels(idx),
        }
    }
}

/// What [`offload`] did.
pub enum Offload {
    On,
    /// Off and changeable: asked for on.
    Asked,
    /// Off and `[fixed]`.
    Fixed,
}

/// Turn hw-tc-offload on unless it is (or cannot be).
pub fn offload(net: &mut dyn Net, idx: u32, now: Feature) -> Result<Offload> {
    if now.active {
        return Ok(Offload::On);
    }
    if !now.changeable {
        return Ok(Offload::Fixed);
    }
    net.set_feature(idx, HW_TC_OFFLOAD, true)?;
    Ok(Offload::Asked)
}

/// What [`tune_channels`] did.
pub struct ChannelOutcome {
    /// The combined count asked for, if a change was sent.
    pub sent: Option<u32>,
    pub warning: Option<String>,
}

/// Set combined channels to `want`, clamped to the device maximum (with a warning).
pub fn tune_channels(
    net: &mut dyn Net,
    idx: u32,
    now: Result<Channels>,
    want: u32,
) -> Result<ChannelOutcome> {
    let ch = match now {
        Err(e) if e.is_kernel(&[Errno::EOPNOTSUPP]) => {
            return Ok(ChannelOutcome {
                sent: None,
                warning: Some("the driver does not support channel settings; left as is".into()),
            })
        }
        r => r?,
    };
    let Some(max) = ch.combined_max else {
        return Ok(ChannelOutcome {
            sent: None,
            warning: Some(format!(
                "no combined channels on this device; {want} not applied"
            )),
        });
    };
    let (target, warning) = if want > max {
        (
            max,
            Some(format!(
                "{want} combined channels requested, the maximum is {max}: using {max}"
            )),
        )
    } else {
        (want, None)
    };
    if ch.combined == Some(target) {
        return Ok(ChannelOutcome {
            sent: None,
            warning,
        });
    }
    net.set_combined(idx, target)?;
    Ok(ChannelOutcome {
        sent: Some(target),
        warning,
    })
}
