//! devlink over generic netlink (family "devlink"): eswitch mode, port dump, params.
//! Numbers from include/uapi/linux/devlink.h (checked against the installed uapi header).

use super::genl::Family;
use super::nl::{self, AttrBuf, NLM_F_DUMP};
use super::{Error, Result};
use std::fmt;

pub const FAMILY: &str = "devlink";
pub const VERSION: u8 = 1;

pub const CMD_PORT_GET: u8 = 5;
pub const CMD_ESWITCH_GET: u8 = 29;
pub const CMD_ESWITCH_SET: u8 = 30;
pub const CMD_PARAM_GET: u8 = 38;
pub const CMD_PARAM_SET: u8 = 39;

const ATTR_BUS_NAME: u16 = 1;
const ATTR_DEV_NAME: u16 = 2;
const ATTR_PORT_INDEX: u16 = 3; // u32
const ATTR_PORT_NETDEV_IFINDEX: u16 = 6; // u32
const ATTR_PORT_NETDEV_NAME: u16 = 7; // string
const ATTR_ESWITCH_MODE: u16 = 25; // u16
const ATTR_PORT_FLAVOUR: u16 = 77; // u16
const ATTR_PARAM: u16 = 80; // nested
const ATTR_PARAM_NAME: u16 = 81; // string
const ATTR_PARAM_TYPE: u16 = 83; // u8
const ATTR_PARAM_VALUES_LIST: u16 = 84; // nested
const ATTR_PARAM_VALUE: u16 = 85; // nested
const ATTR_PARAM_VALUE_DATA: u16 = 86; // dynamic
const ATTR_PARAM_VALUE_CMODE: u16 = 87; // u8
const ATTR_PORT_PCI_PF_NUMBER: u16 = 127; // u16
const ATTR_PORT_PCI_VF_NUMBER: u16 = 128; // u16
const ATTR_PORT_EXTERNAL: u16 = 149; // u8
const ATTR_PORT_CONTROLLER_NUMBER: u16 = 150; // u32

pub const PORT_FLAVOUR_PHYSICAL: u16 = 0;
pub const PORT_FLAVOUR_PCI_PF: u16 = 3;
pub const PORT_FLAVOUR_PCI_VF: u16 = 4;

/// devlink param cmodes.
pub const CMODE_RUNTIME: u8 = 0;
pub const CMODE_DRIVERINIT: u8 = 1;

/// devlink param types (the kernel's NLA_* numbers).
pub const PARAM_TYPE_U8: u8 = 1;
pub const PARAM_TYPE_U16: u8 = 2;
pub const PARAM_TYPE_U32: u8 = 3;
pub const PARAM_TYPE_STRING: u8 = 5;
pub const PARAM_TYPE_FLAG: u8 = 6;

/// A devlink instance handle: `<bus>/<device>` (`pci/0000:37:00.0`, `netdevsim/netdevsim10`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Handle {
    pub bus: String,
    pub dev: String,
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bus, self.dev)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EswitchMode {
    Legacy,
    Switchdev,
    /// e.g. 2 = switchdev_inactive on newer kernels.
    Other(u16),
}

impl EswitchMode {
    pub fn from_raw(v: u16) -> Self {
        match v {
            0 => EswitchMode::Legacy,
            1 => EswitchMode::Switchdev,
            o => EswitchMode::Other(o),
        }
    }
    pub fn raw(self) -> u16 {
        match self {
            EswitchMode::Legacy => 0,
            EswitchMode::Switchdev => 1,
            EswitchMode::Other(o) => o,
        }
    }
}

impl fmt::Display for EswitchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EswitchMode::Legacy => f.write_str("legacy"),
            EswitchMode::Switchdev => f.write_str("switchdev"),
            EswitchMode::Other(o) => write!(f, "mode {o}"),
        }
    }
}

/// One devlink port of a dump.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Port {
    pub handle: Option<Handle>,
    pub index: u32,
    pub flavour: Option<u16>,
    pub pf: Option<u16>,
    pub vf: Option<u16>,
    pub controller: Option<u32>,
    pub external: bool,
    pub netdev_ifindex: Option<u32>,
    pub netdev_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    U8(u8),
    U16(u16),
    U32(u32),
    Str(String),
    Flag(bool),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::U8(v) => write!(f, "{v}"),
            ParamValue::U16(v) => write!(f, "{v}"),
            ParamValue::U32(v) => write!(f, "{v}"),
            ParamValue::Str(v) => f.write_str(v),
            ParamValue::Flag(v) => write!(f, "{v}"),
        }
    }
}

impl ParamValue {
    /// Parse a config string as a value of the param's type.
    pub fn parse(kind: u8, s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "{s:?} is not a valid value for a devlink param of type {kind}"
            ))
        };
        Ok(match kind {
            PARAM_TYPE_U8 => ParamValue::U8(s.parse().map_err(|_| bad())?),
            PARAM_TYPE_U16 => ParamValue::U16(s.parse().map_err(|_| bad())?),
            PARAM_TYPE_U32 => ParamValue::U32(s.parse().map_err(|_| bad())?),
            PARAM_TYPE_STRING => ParamValue::Str(s.to_string()),
            PARAM_TYPE_FLAG => ParamValue::Flag(match s {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(bad()),
            }),
            _ => {
                return Err(Error::Unsupported(format!(
                    "devlink param type {kind} is not supported"
                )))
            }
        })
    }

    fn decode(kind: u8, data: Option<&[u8]>) -> Result<Self> {
        let need = || Error::Decode("devlink param value without data".into());
        Ok(match kind {
            PARAM_TYPE_U8 => ParamValue::U8(nl::u8_of(data.ok_or_else(need)?)?),
            PARAM_TYPE_U16 => ParamValue::U16(nl::u16_of(data.ok_or_else(need)?)?),
            PARAM_TYPE_U32 => ParamValue::U32(nl::u32_of(data.ok_or_else(need)?)?),
            PARAM_TYPE_STRING => ParamValue::Str(nl::cstr(data.ok_or_else(need)?)?),
            PARAM_TYPE_FLAG => ParamValue::Flag(data.is_some()),
            k => return Err(Error::Unsupported(format!("devlink param type {k}"))),
        })
    }

    fn put(&self, a: &mut AttrBuf) {
        match self {
            ParamValue::U8(v) => a.u8(ATTR_PARAM_VALUE_DATA, *v),
            ParamValue::U16(v) => a.u16(ATTR_PARAM_VALUE_DATA, *v),
            ParamValue::U32(v) => a.u32(ATTR_PARAM_VALUE_DATA, *v),
            ParamValue::Str(v) => a.str(ATTR_PARAM_VALUE_DATA, v),
            ParamValue::Flag(true) => a.flag(ATTR_PARAM_VALUE_DATA),
            ParamValue::Flag(false) => a,
        };
    }
}

/// A devlink param: its type and its value per configuration mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub kind: u8,
    pub values: Vec<(u8, ParamValue)>,
}

impl Param {
    pub fn value(&self, cmode: u8) -> Option<&ParamValue> {
        self.values
            .iter()
            .find(|(c, _)| *c == cmode)
            .map(|(_, v)| v)
    }
}

fn handle_attrs(h: &Handle) -> AttrBuf {
    let mut a = AttrBuf::new();
    a.str(ATTR_BUS_NAME, &h.bus).str(ATTR_DEV_NAME, &h.dev);
    a
}

pub fn eswitch_get_payload(h: &Handle) -> Vec<u8> {
    nl::genl_payload(CMD_ESWITCH_GET, VERSION, &handle_attrs(h))
}

pub fn eswitch_set_payload(h: &Handle, mode: EswitchMode) -> Vec<u8> {
    let mut a = handle_attrs(h);
    a.u16(ATTR_ESWITCH_MODE, mode.raw());
    nl::genl_payload(CMD_ESWITCH_SET, VERSION, &a)
}

/// PORT_GET as a dump of every port (older kernels do not filter dumps by handle; the
/// caller filters the replies).
pub fn port_dump_payload() -> Vec<u8> {
    nl::genl_payload(CMD_PORT_GET, VERSION, &AttrBuf::new())
}

pub fn param_get_payload(h: &Handle, name: &str) -> Vec<u8> {
    let mut a = handle_attrs(h);
    a.str(ATTR_PARAM_NAME, name);
    nl::genl_payload(CMD_PARAM_GET, VERSION, &a)
}

pub fn param_set_payload(
    h: &Handle,
    name: &str,
    kind: u8,
    cmode: u8,
    value: &ParamValue,
) -> Vec<u8> {
    let mut a = handle_attrs(h);
    a.str(ATTR_PARAM_NAME, name)
        .u8(ATTR_PARAM_TYPE, kind)
        .u8(ATTR_PARAM_VALUE_CMODE, cmode);
    value.put(&mut a);
    nl::genl_payload(CMD_PARAM_SET, VERSION, &a)
}

fn handle_of(attrs: &[(u16, &[u8])]) -> Result<Option<Handle>> {
    match (nl::get(attrs, ATTR_BUS_NAME), nl::get(attrs, ATTR_DEV_NAME)) {
        (Some(b), Some(d)) => Ok(Some(Handle {
            bus: nl::cstr(b)?,
            dev: nl::cstr(d)?,
        })),
        _ => Ok(None),
    }
}

pub fn parse_eswitch(payload: &[u8]) -> Result<EswitchMode> {
    let (_, attrs) = nl::genl_split(payload)?;
    let raw = nl::get(&attrs, ATTR_ESWITCH_MODE)
        .ok_or_else(|| Error::Decode("eswitch reply without DEVLINK_ATTR_ESWITCH_MODE".into()))?;
    Ok(EswitchMode::from_raw(nl::u16_of(raw)?))
}

pub fn parse_port(payload: &[u8]) -> Result<Port> {
    let (_, a) = nl::genl_split(payload)?;
    let u16_at = |k| nl::get(&a, k).map(nl::u16_of).transpose();
    let u32_at = |k| nl::get(&a, k).map(nl::u32_of).transpose();
    Ok(Port {
        handle: handle_of(&a)?,
        index: u32_at(ATTR_PORT_INDEX)?
            .ok_or_else(|| Error::Decode("port without DEVLINK_ATTR_PORT_INDEX".into()))?,
        flavour: u16_at(ATTR_PORT_FLAVOUR)?,
        pf: u16_at(ATTR_PORT_PCI_PF_NUMBER)?,
        vf: u16_at(ATTR_PORT_PCI_VF_NUMBER)?,
        controller: u32_at(ATTR_PORT_CONTROLLER_NUMBER)?,
        external: nl::get(&a, ATTR_PORT_EXTERNAL)
            .map(nl::u8_of)
            .transpose()?
            .unwrap_or(0)
            != 0,
        netdev_ifindex: u32_at(ATTR_PORT_NETDEV_IFINDEX)?,
        netdev_name: nl::get(&a, ATTR_PORT_NETDEV_NAME)
            .map(nl::cstr)
            .transpose()?,
    })
}

pub fn parse_param(payload: &[u8]) -> Result<Param> {
    let (_, top) = nl::genl_split(payload)?;
    let p = nl::attrs(
        nl::get(&top, ATTR_PARAM)
            .ok_or_else(|| Error::Decode("param reply without DEVLINK_ATTR_PARAM".into()))?,
    )?;
    let name = nl::cstr(
        nl::get(&p, ATTR_PARAM_NAME).ok_or_else(|| Error::Decode("param without name".into()))?,
    )?;
    let kind = nl::u8_of(
        nl::get(&p, ATTR_PARAM_TYPE).ok_or_else(|| Error::Decode("param without type".into()))?,
    )?;
    let mut values = vec![];
    if let Some(list) = nl::get(&p, ATTR_PARAM_VALUES_LIST) {
        for (k, v) in nl::attrs(list)? {
            if k != ATTR_PARAM_VALUE {
                continue;
            }
            let va = nl::attrs(v)?;
            let cmode = nl::u8_of(
                nl::get(&va, ATTR_PARAM_VALUE_CMODE)
                    .ok_or_else(|| Error::Decode("param value without cmode".into()))?,
            )?;
            values.push((
                cmode,
                ParamValue::decode(kind, nl::get(&va, ATTR_PARAM_VALUE_DATA))?,
            ));
        }
    }
    Ok(Param { name, kind, values })
}

/// A connection to the kernel's devlink family.
pub struct Devlink {
    fam: Family,
}

impl Devlink {
    /// [`Error::Unsupported`] when the kernel has no devlink (e.g. the CI host).
    pub fn open() -> Result<Self> {
        Ok(Devlink {
            fam: Family::open(FAMILY)?,
        })
    }

    fn first(&mut self, payload: &[u8], op: &str) -> Result<Vec<u8>> {
        let resp = self.fam.conn.request(self.fam.id, 0, payload, op)?;
        resp.msgs
            .into_iter()
            .next()
            .map(|r| r.payload)
            .ok_or_else(|| Error::Decode(format!("{op}: no reply")))
    }

    pub fn eswitch_mode(&mut self, h: &Handle) -> Result<EswitchMode> {
        let p = self.first(
            &eswitch_get_payload(h),
            &format!("devlink eswitch show {h}"),
        )?;
        parse_eswitch(&p)
    }

    pub fn set_eswitch_mode(&mut self, h: &Handle, mode: EswitchMode) -> Result<()> {
        let op = format!("devlink eswitch set {h} mode {mode}");
        let resp = self
            .fam
            .conn
            .request(self.fam.id, 0, &eswitch_set_payload(h, mode), &op)?;
        if let Some(w) = resp.warning {
            tracing::warn!(devlink = %h, "{op}: kernel says: {w}");
        }
        Ok(())
    }

    /// The ports of one devlink instance.
    pub fn ports(&mut self, h: &Handle) -> Result<Vec<Port>> {
        let resp = self.fam.conn.request(
            self.fam.id,
            NLM_F_DUMP,
            &port_dump_payload(),
            "devlink port dump",
        )?;
        let mut out = vec![];
        for r in resp.msgs.iter().filter(|r| r.msg_type == self.fam.id) {
            let p = parse_port(&r.payload)?;
            if p.handle.as_ref() == Some(h) {
                out.push(p);
            }
        }
        Ok(out)
    }

    pub fn param(&mut self, h: &Handle, name: &str) -> Result<Param> {
        let p = self.first(
            &param_get_payload(h, name),
            &format!("devlink dev param show {h} name {name}"),
        )?;
        parse_param(&p)
    }

    /// Set a param from its config string in the runtime cmode (the only one that takes
    /// effect without a reload). Returns the previous runtime value; no write when equal.
    pub fn set_param(&mut self, h: &Handle, name: &str, value: &str) -> Result<Option<ParamValue>> {
        self.set_param_in(h, name, value, CMODE_RUNTIME)
    }

    /// Set a param in one configuration mode (`CMODE_DRIVERINIT` takes effect at the next
    /// reload). [`Error::Unsupported`] when the param has no such cmode. Returns the previous
    /// value in that cmode; no write when equal.
    pub fn set_param_in(
        &mut self,
        h: &Handle,
        name: &str,
        value: &str,
        cmode: u8,
    ) -> Result<Option<ParamValue>> {
        let cur = self.param(h, name)?;
        let want = ParamValue::parse(cur.kind, value)?;
        let Some(old) = cur.value(cmode).cloned() else {
            return Err(Error::Unsupported(format!(
                "devlink param {name} of {h} has no cmode {cmode} (it has {:?}; 0 = runtime, 1 = driverinit)",
                cur.values.iter().map(|(c, _)| *c).collect::<Vec<_>>()
            )));
        };
        if old == want {
            return Ok(None);
        }
        let op = format!("devlink dev param set {h} name {name} value {want} cmode {cmode}");
        let resp = self.fam.conn.request(
            self.fam.id,
            0,
            &param_set_payload(h, name, cur.kind, cmode, &want),
            &op,
        )?;
        if let Some(w) = resp.warning {
            tracing::warn!(devlink = %h, param = name, "{op}: kernel says: {w}");
        }
        Ok(Some(old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::device::nl::test_attrs::{nest, nla};
    fn h() -> Handle {
        Handle {
            bus: "pci".into(),
            dev: "0000:37:00.0".into(),
        }
    }

    #[test]
    fn eswitch_set_layout() {
        let p = eswitch_set_payload(&h(), EswitchMode::Switchdev);
        let want = [
            vec![30, 1, 0, 0],
            nla(1, b"pci\0"),
            nla(2, b"0000:37:00.0\0"),
            nla(25, &1u16.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(p, want);
    }

    #[test]
    fn eswitch_reply() {
        let p = [
            vec![29, 1, 0, 0],
            nla(1, b"pci\0"),
            nla(2, b"0000:37:00.0\0"),
            nla(25, &1u16.to_ne_bytes()),
            nla(26, &[0]),
        ]
        .concat();
        assert_eq!(parse_eswitch(&p).unwrap(), EswitchMode::Switchdev);
        let p = [vec![29, 1, 0, 0], nla(25, &0u16.to_ne_bytes())].concat();
        assert_eq!(parse_eswitch(&p).unwrap(), EswitchMode::Legacy);
    }

    #[test]
    fn port_reply_vf_representor() {
        let p = [
            vec![7, 1, 0, 0], // DEVLINK_CMD_PORT_NEW
            nla(1, b"netdevsim\0"),
            nla(2, b"netdevsim10\0"),
            nla(3, &2u32.to_ne_bytes()),
            nla(4, &2u16.to_ne_bytes()),
            nla(6, &12u32.to_ne_bytes()),
            nla(7, b"eni10npf0vf1\0"),
            nla(77, &4u16.to_ne_bytes()),
            nla(127, &0u16.to_ne_bytes()),
            nla(128, &1u16.to_ne_bytes()),
            nla(149, &[0]),
        ]
        .concat();
        let port = parse_port(&p).unwrap();
        assert_eq!(
            port,
            Port {
                handle: Some(Handle {
                    bus: "netdevsim".into(),
                    dev: "netdevsim10".into()
                }),
                index: 2,
                flavour: Some(PORT_FLAVOUR_PCI_VF),
                pf: Some(0),
                vf: Some(1),
                controller: None,
                external: false,
                netdev_ifindex: Some(12),
                netdev_name: Some("eni10npf0vf1".into()),
            }
        );
    }

    #[test]
    fn param_reply_and_set() {
        let p = [
            vec![38, 1, 0, 0],
            nla(1, b"pci\0"),
            nla(2, b"0000:37:00.0\0"),
            nest(
                80,
                &[
                    nla(81, b"flow_steering_mode\0"),
                    nla(83, &[5]),
                    nest(84, &[nest(85, &[nla(87, &[0]), nla(86, b"dmfs\0")])]),
                ],
            ),
        ]
        .concat();
        let param = parse_param(&p).unwrap();
        assert_eq!(param.name, "flow_steering_mode");
        assert_eq!(param.kind, PARAM_TYPE_STRING);
        assert_eq!(
            param.value(CMODE_RUNTIME),
            Some(&ParamValue::Str("dmfs".into()))
        );
        assert_eq!(param.value(CMODE_DRIVERINIT), None);

        let v = ParamValue::parse(param.kind, "smfs").unwrap();
        let s = param_set_payload(&h(), "flow_steering_mode", param.kind, CMODE_RUNTIME, &v);
        let want = [
            vec![39, 1, 0, 0],
            nla(1, b"pci\0"),
            nla(2, b"0000:37:00.0\0"),
            nla(81, b"flow_steering_mode\0"),
            nla(83, &[5]),
            nla(87, &[0]),
            nla(86, b"smfs\0"),
        ]
        .concat();
        assert_eq!(s, want);
    }

    #[test]
    fn flag_param_values() {
        assert_eq!(
            ParamValue::parse(PARAM_TYPE_FLAG, "true").unwrap(),
            ParamValue::Flag(true)
        );
        assert!(ParamValue::parse(PARAM_TYPE_U8, "300").is_err());
        let mut a = AttrBuf::new();
        ParamValue::Flag(false).put(&mut a);
        assert!(a.bytes().is_empty(), "false flag = attribute absent");
        assert_eq!(
            ParamValue::decode(PARAM_TYPE_FLAG, None).unwrap(),
            ParamValue::Flag(false)
        );
    }
}
