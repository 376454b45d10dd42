//! rtnetlink link state, read with netlink-packet-route's link messages over [`Conn`].

use super::nl::{Conn, Reply, NLM_F_DUMP};
use super::{Error, Result};
use netlink_packet_core::{Emitable, Parseable};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

/// RTM_NEWLINK / RTM_GETLINK (include/uapi/linux/rtnetlink.h).
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
/// IFF_SLAVE (include/uapi/linux/if.h): the link is enslaved to a bond/team.
pub const IFF_SLAVE: u32 = 0x800;
pub const IFF_UP: u32 = 0x1;

/// What vflag needs to know about one netdev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFF_* flags.
    pub flags: u32,
    /// IFLA_MASTER: ifindex of the bond (or bridge/VRF) this link is enslaved to.
    pub master: Option<u32>,
    pub phys_port_name: Option<String>,
    pub phys_switch_id: Option<Vec<u8>>,
}

impl Link {
    pub fn is_slave(&self) -> bool {
        self.flags & IFF_SLAVE != 0
    }
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// Decode an RTM_NEWLINK payload.
pub fn parse_link(payload: &[u8]) -> Result<Link> {
    let msg =
        LinkMessage::parse(payload).map_err(|e| Error::Decode(format!("RTM_NEWLINK: {e}")))?;
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        flags: msg.header.flags.bits(),
        master: None,
        phys_port_name: None,
        phys_switch_id: None,
    };
    for a in msg.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Controller(m) if m != 0 => link.master = Some(m),
            LinkAttribute::PhysPortName(p) => link.phys_port_name = Some(p),
            LinkAttribute::PhysSwitchId(id) => link.phys_switch_id = Some(id.id[..id.len].to_vec()),
            _ => {}
        }
    }
    Ok(link)
}

fn request_payload(index: u32, name: Option<&str>) -> Vec<u8> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::empty();
    if let Some(n) = name {
        msg.attributes.push(LinkAttribute::IfName(n.to_string()));
    }
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    buf
}

pub struct Rtnl {
    conn: Conn,
}

impl Rtnl {
    pub fn open() -> Result<Self> {
        Ok(Rtnl {
            conn: Conn::open(netlink_sys::protocols::NETLINK_ROUTE)?,
        })
    }

    fn one(&mut self, payload: &[u8], op: &str) -> Result<Link> {
        let resp = self.conn.request(RTM_GETLINK, 0, payload, op)?;
        first_link(&resp.msgs, op)
    }

    /// The link with this ifindex (ENODEV if it is gone).
    pub fn link(&mut self, index: u32) -> Result<Link> {
        self.one(
            &request_payload(index, None),
            &format!("rtnetlink get link #{index}"),
        )
    }

    pub fn link_by_name(&mut self, name: &str) -> Result<Link> {
        self.one(
            &request_payload(0, Some(name)),
            &format!("rtnetlink get link {name}"),
        )
    }

    /// Every link in this network namespace.
    pub fn dump(&mut self) -> Result<Vec<Link>> {
        let resp = self.conn.request(
            RTM_GETLINK,
            NLM_F_DUMP,
            &request_payload(0, None),
            "rtnetlink link dump",
        )?;
        resp.msgs
            .iter()
            .filter(|r| r.msg_type == RTM_NEWLINK)
            .map(|r| parse_link(&r.payload))
            .collect()
    }
}

fn first_link(msgs: &[Reply], op: &str) -> Result<Link> {
    let r = msgs
        .iter()
        .find(|r| r.msg_type == RTM_NEWLINK)
        .ok_or_else(|| Error::Decode(format!("{op}: no RTM_NEWLINK in the reply")))?;
    parse_link(&r.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_newlink_layout() {
        // struct ifinfomsg {family u8, pad u8, type u16, index i32, flags u32, change u32}
        let mut p = vec![0u8, 0];
        p.extend(1u16.to_ne_bytes()); // ARPHRD_ETHER
        p.extend(7i32.to_ne_bytes());
        p.extend((0x1u32 | 0x800 | 0x1000).to_ne_bytes()); // UP|SLAVE|MULTICAST
        p.extend(0u32.to_ne_bytes());
        let attr = |p: &mut Vec<u8>, t: u16, v: &[u8]| {
            p.extend(((4 + v.len()) as u16).to_ne_bytes());
            p.extend(t.to_ne_bytes());
            p.extend(v);
            while !p.len().is_multiple_of(4) {
                p.push(0);
            }
        };
        attr(&mut p, 3, b"ens3f0np0\0"); // IFLA_IFNAME
        attr(&mut p, 10, &9u32.to_ne_bytes()); // IFLA_MASTER
        attr(&mut p, 38, b"p0\0"); // IFLA_PHYS_PORT_NAME
        attr(
            &mut p,
            36,
            &[0xb8, 0x59, 0x9f, 0xff, 0xfe, 0x01, 0x02, 0x03],
        ); // IFLA_PHYS_SWITCH_ID
        let l = parse_link(&p).unwrap();
        assert_eq!(l.index, 7);
        assert_eq!(l.name, "ens3f0np0");
        assert!(l.is_slave() && l.is_up());
        assert_eq!(l.master, Some(9));
        assert_eq!(l.phys_port_name.as_deref(), Some("p0"));
        assert_eq!(
            l.phys_switch_id.as_deref(),
            Some(&[0xb8, 0x59, 0x9f, 0xff, 0xfe, 1, 2, 3][..])
        );
    }
}
