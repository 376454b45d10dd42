//! Generic netlink: resolve a family name ("devlink", "ethtool") to its id with
//! CTRL_CMD_GETFAMILY, using netlink-packet-generic's controller messages.

use super::nl::{Conn, Reply};
use super::{Error, Result};
use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;

/// `GENL_ID_CTRL` (include/uapi/linux/genetlink.h).
pub const GENL_ID_CTRL: u16 = 16;

/// A generic netlink socket bound to one family.
pub struct Family {
    pub conn: Conn,
    pub id: u16,
    pub name: &'static str,
}

/// The CTRL_CMD_GETFAMILY request payload (genl header + CTRL_ATTR_FAMILY_NAME).
pub fn getfamily_payload(name: &str) -> Vec<u8> {
    let msg = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
    });
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    buf
}

/// The family id in a CTRL_CMD_NEWFAMILY reply.
pub fn parse_family_id(reply: &Reply) -> Result<u16> {
    let msg = GenlMessage::<GenlCtrl>::parse_with_param(&reply.payload[..], reply.msg_type)
        .map_err(|e| Error::Decode(format!("genl controller reply: {e}")))?;
    msg.payload
        .nlas
        .iter()
        .find_map(|a| match a {
            GenlCtrlAttrs::FamilyId(id) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| Error::Decode("genl controller reply without CTRL_ATTR_FAMILY_ID".into()))
}

impl Family {
    /// Open a generic netlink socket and resolve `name`. A kernel without the family
    /// (e.g. no devlink) gives [`Error::Unsupported`].
    pub fn open(name: &'static str) -> Result<Self> {
        let mut conn = Conn::open(netlink_sys::protocols::NETLINK_GENERIC)?;
        let op = format!("resolve generic netlink family {name:?}");
        let resp = match conn.request(GENL_ID_CTRL, 0, &getfamily_payload(name), &op) {
            Err(Error::Kernel { errno, .. }) if errno == libc_enoent() => {
                return Err(Error::Unsupported(format!(
                    "the kernel has no {name:?} generic netlink family"
                )))
            }
            r => r?,
        };
        let reply = resp
            .msgs
            .first()
            .ok_or_else(|| Error::Decode(format!("{op}: no reply")))?;
        let id = parse_family_id(reply)?;
        Ok(Family { conn, id, name })
    }
}

fn libc_enoent() -> i32 {
    nix::errno::Errno::ENOENT as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getfamily_request_layout() {
        // genlmsghdr {cmd=3 (CTRL_CMD_GETFAMILY), version, reserved} + attr 2 "ethtool\0"
        let p = getfamily_payload("ethtool");
        assert_eq!(p[0], 3);
        assert_eq!(&p[4..6], &12u16.to_ne_bytes());
        assert_eq!(&p[6..8], &2u16.to_ne_bytes());
        assert_eq!(&p[8..16], b"ethtool\0");
        assert_eq!(p.len(), 16);
    }

    #[test]
    fn family_id_from_reply() {
        // CTRL_CMD_NEWFAMILY (1), version 2, attrs FAMILY_NAME "devlink", FAMILY_ID 0x15.
        let mut p = vec![1, 2, 0, 0];
        p.extend(12u16.to_ne_bytes());
        p.extend(2u16.to_ne_bytes());
        p.extend(b"devlink\0");
        p.extend(6u16.to_ne_bytes());
        p.extend(1u16.to_ne_bytes());
        p.extend(0x15u16.to_ne_bytes());
        p.extend([0, 0]);
        let id = parse_family_id(&Reply {
            msg_type: GENL_ID_CTRL,
            payload: p,
        })
        .unwrap();
        assert_eq!(id, 0x15);
    }
}
