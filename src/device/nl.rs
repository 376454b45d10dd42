//! A synchronous netlink connection over `netlink_sys::Socket`, plus a tiny attribute
//! writer/reader for the generic-netlink families no crate implements (devlink, ethtool set).
//!
//! Numbers are from include/uapi/linux/netlink.h (checked against the installed uapi headers).

use super::{Error, Result};
use netlink_packet_core::{NetlinkBuffer, NlasIterator};
use netlink_sys::{Socket, SocketAddr};
use std::time::Duration;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
/// In an NLMSG_ERROR: the echoed request was cut to its header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// In an NLMSG_ERROR/DONE: extended-ack TLVs follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_HDRLEN: usize = 16;

/// How long one request may wait for the kernel before it is an error (never forever).
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One message of a reply: its netlink type and payload (after the 16-byte header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub msg_type: u16,
    pub payload: Vec<u8>,
}

/// The replies to one request, plus a warning the kernel attached to a successful ack.
#[derive(Debug, Default)]
pub struct Response {
    pub msgs: Vec<Reply>,
    pub warning: Option<String>,
}

/// What one received datagram said about the request in flight.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    More,
    Done { warning: Option<String> },
}

pub struct Conn {
    sock: Socket,
    seq: u32,
}

impl Conn {
    /// `protocol`: `netlink_sys::protocols::NETLINK_ROUTE` or `NETLINK_GENERIC`.
    pub fn open(protocol: isize) -> Result<Self> {
        let sock_err = |op: &str, cause| Error::Socket {
            op: op.to_string(),
            cause,
        };
        let mut sock = Socket::new(protocol).map_err(|e| sock_err("socket", e))?;
        sock.bind_auto().map_err(|e| sock_err("bind", e))?;
        // Ask for the kernel's error text; older kernels refuse the option: then we simply get none.
        let _ = sock.set_ext_ack(true);
        nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as i64, 0),
        )
        .map_err(|e| sock_err("setsockopt SO_RCVTIMEO", e.into()))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| sock_err("connect", e))?;
        Ok(Conn { sock, seq: 1 })
    }

    /// Send one request and collect its replies. `op` names the request in errors
    /// (e.g. "devlink eswitch set pci/0000:37:00.0"). Dumps (`NLM_F_DUMP` in `flags`) end at
    /// NLMSG_DONE; other requests ask for an ack and end at it.
    pub fn request(
        &mut self,
        msg_type: u16,
        flags: u16,
        payload: &[u8],
        op: &str,
    ) -> Result<Response> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let flags = flags | NLM_F_REQUEST | if dump { 0 } else { NLM_F_ACK };
        let buf = encode_request(msg_type, flags, seq, payload);
        self.sock.send(&buf, 0).map_err(|cause| Error::Socket {
            op: format!("{op}: send"),
            cause,
        })?;
        let mut resp = Response::default();
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(|cause| Error::Socket {
                op: format!("{op}: receive"),
                cause,
            })?;
            match parse_datagram(&data, seq, op, &mut resp.msgs)? {
                Step::More => continue,
                Step::Done { warning } => {
                    resp.warning = warning;
                    return Ok(resp);
                }
            }
        }
    }
}

/// A netlink message: 16-byte header (length, type, flags, seq, port 0) and the payload.
pub fn encode_request(msg_type: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let mut buf = Vec::with_capacity(align4(len));
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&msg_type.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align4(len), 0);
    buf
}

/// Walk the messages of one datagram: collect replies for `seq`, stop at DONE or the ack,
/// turn an NLMSG_ERROR into [`Error::Kernel`] with the extack text.
fn parse_datagram(data: &[u8], seq: u32, op: &str, out: &mut Vec<Reply>) -> Result<Step> {
    let mut off = 0;
    while off + NLMSG_HDRLEN <= data.len() {
        let msg = NetlinkBuffer::new_checked(&data[off..])
            .map_err(|e| Error::Decode(format!("{op}: {e}")))?;
        let len = msg.length() as usize;
        let (ty, flags, payload) = (msg.message_type(), msg.flags(), msg.payload());
        off += align4(len);
        if msg.sequence_number() != seq {
            continue; // a stale answer to an earlier, abandoned request
        }
        match ty {
            NLMSG_ERROR | NLMSG_DONE => {
                if payload.len() < 4 && ty == NLMSG_DONE {
                    return Ok(Step::Done { warning: None });
                }
                let (code, extack) = parse_error(payload, flags)
                    .ok_or_else(|| Error::Decode(format!("{op}: short error message")))?;
                if code < 0 {
                    return Err(Error::Kernel {
                        op: op.to_string(),
                        errno: -code,
                        extack,
                    });
                }
                return Ok(Step::Done { warning: extack });
            }
            _ => out.push(Reply {
                msg_type: ty,
                payload: payload.to_vec(),
            }),
        }
    }
    Ok(Step::More)
}

/// The code and extack message of an NLMSG_ERROR (or NLMSG_DONE) payload: `int error`,
/// then (error only) the echoed request — its header only when NLM_F_CAPPED — then TLVs
/// when NLM_F_ACK_TLVS.
fn parse_error(payload: &[u8], flags: u16) -> Option<(i32, Option<String>)> {
    let code = i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?);
    if flags & NLM_F_ACK_TLVS == 0 {
        return Some((code, None));
    }
    let mut off = 4;
    if payload.len() >= 4 + NLMSG_HDRLEN && looks_like_echo(&payload[4..]) {
        let echoed = u32::from_ne_bytes(payload[4..8].try_into().ok()?) as usize;
        off += if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align4(echoed)
        };
    }
    let tlvs = payload.get(off..)?;
    let msg = attrs(tlvs)
        .ok()?
        .into_iter()
        .find(|(k, _)| *k == NLMSGERR_ATTR_MSG)
        .and_then(|(_, v)| cstr(v).ok());
    Some((code, msg))
}

/// NLMSG_DONE carries no echoed request; NLMSG_ERROR does. The echo starts with a length ≥ 16.
fn looks_like_echo(b: &[u8]) -> bool {
    b.len() >= 4 && u32::from_ne_bytes(b[..4].try_into().unwrap()) as usize >= NLMSG_HDRLEN
}

/// Attribute writer (TLVs padded to 4 bytes, host byte order, as the kernel expects).
#[derive(Debug, Default, Clone)]
pub struct AttrBuf(Vec<u8>);

impl AttrBuf {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align4(self.0.len()), 0);
        self
    }
    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.put(kind, &[v])
    }
    pub fn u16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    /// NUL-terminated string (NLA_NUL_STRING / NLA_STRING both accept it).
    pub fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v)
    }
    pub fn flag(&mut self, kind: u16) -> &mut Self {
        self.put(kind, &[])
    }
    /// A nested attribute, with NLA_F_NESTED set (strictly validated families require it).
    pub fn nested(&mut self, kind: u16, f: impl FnOnce(&mut AttrBuf)) -> &mut Self {
        let mut inner = AttrBuf::new();
        f(&mut inner);
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Attributes of a stream as (type, value) pairs, in order.
pub type Attrs<'a> = Vec<(u16, &'a [u8])>;

/// The (type, value) pairs of an attribute stream; type without the NESTED/BYTEORDER bits.
pub fn attrs(buf: &[u8]) -> Result<Attrs<'_>> {
    NlasIterator::new(buf)
        .map(|nla| {
            let nla = nla.map_err(|e| Error::Decode(e.to_string()))?;
            let kind = nla.kind();
            let value: &[u8] = nla.into_inner();
            // NlaBuffer::value() borrows; take the value range from the inner slice instead.
            let len = u16::from_ne_bytes([value[0], value[1]]) as usize;
            Ok((kind, &value[4..len]))
        })
        .collect()
}

/// The first attribute of `kind`.
pub fn get<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

pub fn u8_of(v: &[u8]) -> Result<u8> {
    v.first()
        .copied()
        .ok_or_else(|| Error::Decode("empty u8 attribute".into()))
}
pub fn u16_of(v: &[u8]) -> Result<u16> {
    Ok(u16::from_ne_bytes(
        v.get(..2)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Decode("short u16 attribute".into()))?,
    ))
}
pub fn u32_of(v: &[u8]) -> Result<u32> {
    Ok(u32::from_ne_bytes(
        v.get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Decode("short u32 attribute".into()))?,
    ))
}
/// A string attribute (the trailing NUL is optional).
pub fn cstr(v: &[u8]) -> Result<String> {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8(v[..end].to_vec())
        .map_err(|_| Error::Decode("string attribute is not UTF-8".into()))
}

/// The 4-byte generic netlink header (cmd, version, reserved) followed by attributes.
pub fn genl_payload(cmd: u8, version: u8, attrs: &AttrBuf) -> Vec<u8> {
    let mut v = vec![cmd, version, 0, 0];
    v.extend_from_slice(attrs.bytes());
    v
}

/// Split a generic netlink reply payload into its command and attributes.
pub fn genl_split(payload: &[u8]) -> Result<(u8, Attrs<'_>)> {
    if payload.len() < 4 {
        return Err(Error::Decode(
            "generic netlink reply shorter than its header".into(),
        ));
    }
    Ok((payload[0], attrs(&payload[4..])?))
}

/// Hand-built attributes for decoder tests: len, type, value, padding (struct nlattr), written
/// independently of [`AttrBuf`] so the two check each other.
#[cfg(test)]
pub(crate) mod test_attrs {
    pub fn nla(t: u16, v: &[u8]) -> Vec<u8> {
        let mut b = vec![];
        b.extend(((4 + v.len()) as u16).to_ne_bytes());
        b.extend(t.to_ne_bytes());
        b.extend(v);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        b
    }

    pub fn nest(t: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        nla(t | 0x8000, &parts.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes laid out by hand from the uapi structs (struct nlmsghdr, struct nlmsgerr,
    /// struct nlattr) — independent of the encoder above.
    fn hdr(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = vec![];
        v.extend(len.to_ne_bytes());
        v.extend(ty.to_ne_bytes());
        v.extend(flags.to_ne_bytes());
        v.extend(seq.to_ne_bytes());
        v.extend(7u32.to_ne_bytes());
        v
    }

    #[test]
    fn request_header_layout() {
        let b = encode_request(18, NLM_F_REQUEST | NLM_F_ACK, 42, &[1, 2, 3]);
        assert_eq!(b.len(), 20, "19 bytes padded to 4");
        assert_eq!(&b[0..4], &19u32.to_ne_bytes());
        assert_eq!(&b[4..6], &18u16.to_ne_bytes());
        assert_eq!(&b[6..8], &5u16.to_ne_bytes());
        assert_eq!(&b[8..12], &42u32.to_ne_bytes());
        assert_eq!(&b[16..], &[1, 2, 3, 0]);
    }

    #[test]
    fn attr_layout_and_nesting() {
        let mut a = AttrBuf::new();
        a.str(1, "pci").nested(2, |n| {
            n.u16(3, 1);
        });
        // "pci\0" -> len 8, type 1; nested: len 4+8, type 2|0x8000; inner len 6 type 3, pad 2
        let mut want = vec![];
        want.extend(8u16.to_ne_bytes());
        want.extend(1u16.to_ne_bytes());
        want.extend(b"pci\0");
        want.extend(12u16.to_ne_bytes());
        want.extend((2u16 | 0x8000).to_ne_bytes());
        want.extend(6u16.to_ne_bytes());
        want.extend(3u16.to_ne_bytes());
        want.extend(1u16.to_ne_bytes());
        want.extend([0, 0]);
        assert_eq!(a.bytes(), &want[..]);
        let top = attrs(a.bytes()).unwrap();
        assert_eq!(top[0], (1, &b"pci\0"[..]));
        assert_eq!(top[1].0, 2, "nested flag is masked off the type");
        let inner = attrs(top[1].1).unwrap();
        assert_eq!(u16_of(inner[0].1).unwrap(), 1);
    }

    #[test]
    fn error_with_extack_becomes_kernel_error() {
        // NLMSG_ERROR, flags CAPPED|ACK_TLVS: int -95, echoed header (16 bytes), TLV MSG.
        let text = b"Switchdev mode is not supported\0";
        let mut payload = vec![];
        payload.extend((-95i32).to_ne_bytes());
        payload.extend(hdr(36, 0x1c, 5, 9));
        let tlv_len = 4 + text.len();
        payload.extend((tlv_len as u16).to_ne_bytes());
        payload.extend(1u16.to_ne_bytes());
        payload.extend(text);
        payload.resize(align4(payload.len()), 0);
        let mut dgram = hdr(
            (16 + payload.len()) as u32,
            NLMSG_ERROR,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            9,
        );
        dgram.extend(payload);
        let mut out = vec![];
        let err = parse_datagram(&dgram, 9, "devlink eswitch set", &mut out).unwrap_err();
        match &err {
            Error::Kernel { errno, extack, .. } => {
                assert_eq!(*errno, 95);
                assert_eq!(extack.as_deref(), Some("Switchdev mode is not supported"));
            }
            e => panic!("{e:?}"),
        }
        let shown = err.to_string();
        assert!(
            shown.contains("devlink eswitch set") && shown.contains("kernel: Switchdev mode"),
            "{shown}"
        );
    }

    #[test]
    fn uncapped_error_skips_echoed_request() {
        // Not capped: the whole 24-byte request is echoed before the TLVs.
        let mut payload = vec![];
        payload.extend((-22i32).to_ne_bytes());
        payload.extend(hdr(24, 0x1c, 5, 3));
        payload.extend([30, 1, 0, 0, 0xAA, 0xBB, 0xCC, 0xDD]);
        payload.extend(8u16.to_ne_bytes());
        payload.extend(1u16.to_ne_bytes());
        payload.extend(b"bad\0");
        let mut dgram = hdr((16 + payload.len()) as u32, NLMSG_ERROR, NLM_F_ACK_TLVS, 3);
        dgram.extend(payload);
        let err = parse_datagram(&dgram, 3, "x", &mut vec![]).unwrap_err();
        assert!(
            matches!(err, Error::Kernel { errno: 22, extack: Some(ref m), .. } if m == "bad"),
            "{err:?}"
        );
    }

    #[test]
    fn dump_collects_until_done_and_skips_other_seq() {
        let mut d = hdr(20, 0x10, NLM_F_MULTI, 5);
        d.extend([1, 2, 3, 4]);
        d.extend(hdr(20, 0x10, NLM_F_MULTI, 4)); // stale
        d.extend([9, 9, 9, 9]);
        let mut out = vec![];
        assert_eq!(parse_datagram(&d, 5, "dump", &mut out).unwrap(), Step::More);
        let mut done = hdr(20, NLMSG_DONE, NLM_F_MULTI, 5);
        done.extend(0i32.to_ne_bytes());
        assert_eq!(
            parse_datagram(&done, 5, "dump", &mut out).unwrap(),
            Step::Done { warning: None }
        );
        assert_eq!(
            out,
            vec![Reply {
                msg_type: 0x10,
                payload: vec![1, 2, 3, 4]
            }]
        );
    }

    #[test]
    fn ack_with_warning_is_success() {
        let mut payload = vec![];
        payload.extend(0i32.to_ne_bytes());
        payload.extend(hdr(16, 0x1c, 5, 2));
        payload.extend(8u16.to_ne_bytes());
        payload.extend(1u16.to_ne_bytes());
        payload.extend(b"hmm\0");
        let mut d = hdr(
            (16 + payload.len()) as u32,
            NLMSG_ERROR,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            2,
        );
        d.extend(payload);
        assert_eq!(
            parse_datagram(&d, 2, "x", &mut vec![]).unwrap(),
            Step::Done {
                warning: Some("hmm".into())
            }
        );
    }
}
