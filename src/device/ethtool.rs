//! ethtool over generic netlink (family "ethtool"): features by name (`hw-tc-offload`) and
//! channels. Numbers from include/uapi/linux/ethtool_netlink.h; devices addressed by ifindex.
//! Set-up and status read every netdev at once with two dumps and compact bitsets (see
//! [`Ethtool::dump_feature`]) and ask one device (verbose bitsets, names checked by the kernel)
//! only when a dump left it out.

use std::collections::HashMap;

use super::genl::Family;
use super::nl::{self, AttrBuf};
use super::{Error, Result};

pub const FAMILY: &str = "ethtool";
pub const VERSION: u8 = 1;

// Commands, user space -> kernel.
pub const MSG_STRSET_GET: u8 = 1;
pub const MSG_FEATURES_GET: u8 = 11;
pub const MSG_FEATURES_SET: u8 = 12;
pub const MSG_CHANNELS_GET: u8 = 17;
pub const MSG_CHANNELS_SET: u8 = 18;
// Replies, kernel -> user space (a separate enum in the uapi header).
pub const MSG_STRSET_GET_REPLY: u8 = 1;
pub const MSG_FEATURES_GET_REPLY: u8 = 11;
pub const MSG_CHANNELS_GET_REPLY: u8 = 18;

// ETHTOOL_A_HEADER_*
const A_HEADER_DEV_INDEX: u16 = 1;
const A_HEADER_DEV_NAME: u16 = 2;
const A_HEADER_FLAGS: u16 = 3;
/// ETHTOOL_FLAG_COMPACT_BITSETS: bitsets as u32 arrays instead of lists of named bits.
const FLAG_COMPACT_BITSETS: u32 = 1;
/// ETHTOOL_FLAG_OMIT_REPLY: no SET reply, just the ack.
const FLAG_OMIT_REPLY: u32 = 1 << 1;

// ETHTOOL_A_STRSET_*, _STRINGSETS_*, _STRINGSET_*, _STRINGS_*, _STRING_*; ETH_SS_FEATURES.
const A_STRSET_HEADER: u16 = 1;
const A_STRSET_STRINGSETS: u16 = 2;
const A_STRINGSETS_STRINGSET: u16 = 1;
const A_STRINGSET_ID: u16 = 1;
const A_STRINGSET_STRINGS: u16 = 3;
const A_STRINGS_STRING: u16 = 1;
const A_STRING_INDEX: u16 = 1;
const A_STRING_VALUE: u16 = 2;
const ETH_SS_FEATURES: u32 = 4;

// ETHTOOL_A_FEATURES_*
const A_FEATURES_HEADER: u16 = 1;
const A_FEATURES_HW: u16 = 2;
const A_FEATURES_WANTED: u16 = 3;
const A_FEATURES_ACTIVE: u16 = 4;
const A_FEATURES_NOCHANGE: u16 = 5;

// ETHTOOL_A_BITSET_* and ETHTOOL_A_BITSET_BIT(S)_*
const A_BITSET_NOMASK: u16 = 1;
const A_BITSET_BITS: u16 = 3;
const A_BITSET_VALUE: u16 = 4;
const A_BITSET_MASK: u16 = 5;
const A_BITSET_BITS_BIT: u16 = 1;
const A_BITSET_BIT_NAME: u16 = 2;
const A_BITSET_BIT_VALUE: u16 = 3;

// ETHTOOL_A_CHANNELS_*
const A_CHANNELS_HEADER: u16 = 1;
const A_CHANNELS_COMBINED_MAX: u16 = 5;
const A_CHANNELS_COMBINED_COUNT: u16 = 9;

pub const HW_TC_OFFLOAD: &str = "hw-tc-offload";

/// One feature's state, as `ethtool -k` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    pub active: bool,
    pub wanted: bool,
    /// In the device's changeable set (`hw`); false = `[fixed]`.
    pub changeable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    /// `None`: the device has no combined channels (max 0, attribute absent).
    pub combined: Option<u32>,
    pub combined_max: Option<u32>,
}

fn header(a: &mut AttrBuf, kind: u16, ifindex: u32, flags: u32) {
    a.nested(kind, |h| {
        h.u32(A_HEADER_DEV_INDEX, ifindex);
        if flags != 0 {
            h.u32(A_HEADER_FLAGS, flags);
        }
    });
}

pub fn features_get_payload(ifindex: u32) -> Vec<u8> {
    let mut a = AttrBuf::new();
    header(&mut a, A_FEATURES_HEADER, ifindex, 0);
    nl::genl_payload(MSG_FEATURES_GET, VERSION, &a)
}

/// FEATURES_SET with a verbose WANTED bitset naming one feature: listed bits form the mask,
/// the VALUE flag says on.
pub fn features_set_payload(ifindex: u32, name: &str, on: bool) -> Vec<u8> {
    let mut a = AttrBuf::new();
    header(&mut a, A_FEATURES_HEADER, ifindex, FLAG_OMIT_REPLY);
    a.nested(A_FEATURES_WANTED, |bs| {
        bs.nested(A_BITSET_BITS, |bits| {
            bits.nested(A_BITSET_BITS_BIT, |bit| {
                bit.str(A_BITSET_BIT_NAME, name);
                if on {
                    bit.flag(A_BITSET_BIT_VALUE);
                }
            });
        });
    });
    nl::genl_payload(MSG_FEATURES_SET, VERSION, &a)
}

/// Whether `name` is set in a verbose (non-compact) bitset. Without NOMASK only bits carrying
/// the VALUE flag are set; with NOMASK every listed bit is set.
pub fn bitset_has(bitset: &[u8], name: &str) -> Result<bool> {
    let top = nl::attrs(bitset)?;
    let nomask = nl::get(&top, A_BITSET_NOMASK).is_some();
    let Some(bits) = nl::get(&top, A_BITSET_BITS) else {
        return Ok(false);
    };
    for (kind, bit) in nl::attrs(bits)? {
        if kind != A_BITSET_BITS_BIT {
            continue;
        }
        let b = nl::attrs(bit)?;
        if nl::get(&b, A_BITSET_BIT_NAME)
            .map(nl::cstr)
            .transpose()?
            .as_deref()
            == Some(name)
        {
            return Ok(nomask || nl::get(&b, A_BITSET_BIT_VALUE).is_some());
        }
    }
    Ok(false)
}

/// Decode a FEATURES_GET reply for one feature. A feature the kernel does not know at all
/// is [`Error::NotFound`].
pub fn parse_feature(payload: &[u8], name: &str) -> Result<Feature> {
    let (_, attrs) = nl::genl_split(payload)?;
    feature_of(&attrs, |b| bitset_has(b, name))
}

/// The feature from a FEATURES_GET reply's four bitsets; `has` tests one bitset (verbose or
/// compact) for it. An absent bitset counts as "not set".
fn feature_of(attrs: &[(u16, &[u8])], has: impl Fn(&[u8]) -> Result<bool>) -> Result<Feature> {
    let set = |k| -> Result<bool> {
        nl::get(attrs, k)
            .map(&has)
            .transpose()
            .map(|v| v.unwrap_or(false))
    };
    Ok(Feature {
        active: set(A_FEATURES_ACTIVE)?,
        wanted: set(A_FEATURES_WANTED)?,
        changeable: set(A_FEATURES_HW)? && !set(A_FEATURES_NOCHANGE)?,
    })
}

pub fn channels_get_payload(ifindex: u32) -> Vec<u8> {
    let mut a = AttrBuf::new();
    header(&mut a, A_CHANNELS_HEADER, ifindex, 0);
    nl::genl_payload(MSG_CHANNELS_GET, VERSION, &a)
}

pub fn channels_set_payload(ifindex: u32, combined: u32) -> Vec<u8> {
    let mut a = AttrBuf::new();
    header(&mut a, A_CHANNELS_HEADER, ifindex, 0);
    a.u32(A_CHANNELS_COMBINED_COUNT, combined);
    nl::genl_payload(MSG_CHANNELS_SET, VERSION, &a)
}

pub fn parse_channels(payload: &[u8]) -> Result<Channels> {
    let (_, attrs) = nl::genl_split(payload)?;
    Ok(Channels {
        combined: nl::get(&attrs, A_CHANNELS_COMBINED_COUNT)
            .map(nl::u32_of)
            .transpose()?,
        combined_max: nl::get(&attrs, A_CHANNELS_COMBINED_MAX)
            .map(nl::u32_of)
            .transpose()?,
    })
}

/// STRSET_GET for the global feature names (`ethtool -k`'s names and their bit numbers).
/// The kernel refuses a request without a device (EINVAL), although the set is global: it
/// names `lo`, which every network namespace has.
pub fn feature_names_payload() -> Vec<u8> {
    let mut a = AttrBuf::new();
    a.nested(A_STRSET_HEADER, |h| {
        h.str(A_HEADER_DEV_NAME, "lo");
    });
    a.nested(A_STRSET_STRINGSETS, |sets| {
        sets.nested(A_STRINGSETS_STRINGSET, |set| {
            set.u32(A_STRINGSET_ID, ETH_SS_FEATURES);
        });
    });
    nl::genl_payload(MSG_STRSET_GET, VERSION, &a)
}

/// The bit number of feature `name` in a STRSET_GET reply ([`Error::NotFound`] if absent).
pub fn parse_feature_index(payload: &[u8], name: &str) -> Result<u32> {
    let (_, attrs) = nl::genl_split(payload)?;
    let sets = nl::get(&attrs, A_STRSET_STRINGSETS).map_or(Ok(vec![]), nl::attrs)?;
    for (_, set) in sets.iter().filter(|(k, _)| *k == A_STRINGSETS_STRINGSET) {
        let set = nl::attrs(set)?;
        if nl::get(&set, A_STRINGSET_ID).map(nl::u32_of).transpose()? != Some(ETH_SS_FEATURES) {
            continue;
        }
        let strings = nl::get(&set, A_STRINGSET_STRINGS).map_or(Ok(vec![]), nl::attrs)?;
        for (_, st) in strings.iter().filter(|(k, _)| *k == A_STRINGS_STRING) {
            let st = nl::attrs(st)?;
            if nl::get(&st, A_STRING_VALUE)
                .map(nl::cstr)
                .transpose()?
                .as_deref()
                == Some(name)
            {
                if let Some(i) = nl::get(&st, A_STRING_INDEX) {
                    return nl::u32_of(i);
                }
            }
        }
    }
    Err(Error::NotFound(format!(
        "the kernel knows no feature {name:?}"
    )))
}

/// A dump request (no device in the header) for `cmd`; `flags` are ETHTOOL_FLAG_*.
fn dump_payload(cmd: u8, header_kind: u16, flags: u32) -> Vec<u8> {
    let mut a = AttrBuf::new();
    if flags != 0 {
        a.nested(header_kind, |h| {
            h.u32(A_HEADER_FLAGS, flags);
        });
    }
    nl::genl_payload(cmd, VERSION, &a)
}

pub fn features_dump_payload() -> Vec<u8> {
    dump_payload(MSG_FEATURES_GET, A_FEATURES_HEADER, FLAG_COMPACT_BITSETS)
}

pub fn channels_dump_payload() -> Vec<u8> {
    dump_payload(MSG_CHANNELS_GET, A_CHANNELS_HEADER, 0)
}

/// Bit `bit` of a compact bitset: VALUE words, masked by MASK unless NOMASK.
pub fn compact_bit(bitset: &[u8], bit: u32) -> Result<bool> {
    let top = nl::attrs(bitset)?;
    let word = |kind| -> Result<u32> {
        let Some(v) = nl::get(&top, kind) else {
            return Ok(0);
        };
        let at = (bit / 32) as usize * 4;
        v.get(at..at + 4).map_or(Ok(0), nl::u32_of)
    };
    let on = word(A_BITSET_VALUE)? & (1 << (bit % 32)) != 0;
    let masked =
        nl::get(&top, A_BITSET_NOMASK).is_some() || word(A_BITSET_MASK)? & (1 << (bit % 32)) != 0;
    Ok(on && masked)
}

/// The device a reply is about (its header's DEV_INDEX).
fn reply_ifindex(attrs: &[(u16, &[u8])], header_kind: u16) -> Result<u32> {
    let h = nl::get(attrs, header_kind)
        .ok_or_else(|| Error::Decode("ethtool reply without a header".into()))?;
    let h = nl::attrs(h)?;
    nl::get(&h, A_HEADER_DEV_INDEX)
        .map(nl::u32_of)
        .transpose()?
        .ok_or_else(|| Error::Decode("ethtool reply header without a device index".into()))
}

/// Decode one FEATURES_GET reply with compact bitsets: the device and feature bit `bit`.
pub fn parse_feature_compact(payload: &[u8], bit: u32) -> Result<(u32, Feature)> {
    let (_, attrs) = nl::genl_split(payload)?;
    let f = feature_of(&attrs, |b| compact_bit(b, bit))?;
    Ok((reply_ifindex(&attrs, A_FEATURES_HEADER)?, f))
}

/// Decode one CHANNELS_GET reply of a dump: the device and its channels.
pub fn parse_channels_of(payload: &[u8]) -> Result<(u32, Channels)> {
    let (_, attrs) = nl::genl_split(payload)?;
    Ok((
        reply_ifindex(&attrs, A_CHANNELS_HEADER)?,
        parse_channels(payload)?,
    ))
}

/// A connection to the kernel's ethtool family.
pub struct Ethtool {
    fam: Family,
    /// Feature bit numbers already looked up (they are fixed while the kernel runs).
    bits: HashMap<String, u32>,
}

impl Ethtool {
    pub fn open() -> Result<Self> {
        Ok(Ethtool {
            fam: Family::open(FAMILY)?,
            bits: HashMap::new(),
        })
    }

    fn get(&mut self, payload: &[u8], reply_cmd: u8, op: &str) -> Result<Vec<u8>> {
        let resp = self.fam.conn.request(self.fam.id, 0, payload, op)?;
        resp.msgs
            .into_iter()
            .find(|r| r.msg_type == self.fam.id && r.payload.first() == Some(&reply_cmd))
            .map(|r| r.payload)
            .ok_or_else(|| Error::Decode(format!("{op}: no reply")))
    }

    pub fn feature(&mut self, ifindex: u32, name: &str) -> Result<Feature> {
        let p = self.get(
            &features_get_payload(ifindex),
            MSG_FEATURES_GET_REPLY,
            &format!("ethtool features get #{ifindex}"),
        )?;
        parse_feature(&p, name)
    }

    /// Ask for a feature. The kernel may accept the request and keep the feature off (the
    /// driver refuses it): read it back to know.
    pub fn set_feature(&mut self, ifindex: u32, name: &str, on: bool) -> Result<()> {
        let op = format!(
            "ethtool features set #{ifindex} {name} {}",
            if on { "on" } else { "off" }
        );
        let resp = self.fam.conn.request(
            self.fam.id,
            0,
            &features_set_payload(ifindex, name, on),
            &op,
        )?;
        if let Some(w) = resp.warning {
            tracing::warn!(ifindex, feature = name, "{op}: kernel says: {w}");
        }
        Ok(())
    }

    pub fn channels(&mut self, ifindex: u32) -> Result<Channels> {
        let p = self.get(
            &channels_get_payload(ifindex),
            MSG_CHANNELS_GET_REPLY,
            &format!("ethtool channels get #{ifindex}"),
        )?;
        parse_channels(&p)
    }

    /// One feature of every netdev in the namespace: a feature-name lookup and one dump with
    /// compact bitsets, instead of a request with ~60 named bits ×4 per device.
    pub fn dump_feature(&mut self, name: &str) -> Result<HashMap<u32, Feature>> {
        let bit = self.feature_bit(name)?;
        self.dump(
            &features_dump_payload(),
            MSG_FEATURES_GET_REPLY,
            "ethtool features dump",
            |p| parse_feature_compact(p, bit),
        )
    }

    fn feature_bit(&mut self, name: &str) -> Result<u32> {
        if let Some(b) = self.bits.get(name) {
            return Ok(*b);
        }
        let op = format!("ethtool strset get features ({name})");
        let bit = parse_feature_index(
            &self.get(&feature_names_payload(), MSG_STRSET_GET_REPLY, &op)?,
            name,
        )?;
        self.bits.insert(name.to_string(), bit);
        Ok(bit)
    }

    /// Channels of every netdev that has channel settings. The kernel leaves the devices
    /// without (EOPNOTSUPP) out of the dump.
    pub fn dump_channels(&mut self) -> Result<HashMap<u32, Channels>> {
        self.dump(
            &channels_dump_payload(),
            MSG_CHANNELS_GET_REPLY,
            "ethtool channels dump",
            parse_channels_of,
        )
    }

    fn dump<T>(
        &mut self,
        payload: &[u8],
        reply_cmd: u8,
        op: &str,
        parse: impl Fn(&[u8]) -> Result<(u32, T)>,
    ) -> Result<HashMap<u32, T>> {
        let resp = self
            .fam
            .conn
            .request(self.fam.id, nl::NLM_F_DUMP, payload, op)?;
        resp.msgs
            .iter()
            .filter(|r| r.msg_type == self.fam.id && r.payload.first() == Some(&reply_cmd))
            .map(|r| parse(&r.payload))
            .collect()
    }

    pub fn set_combined(&mut self, ifindex: u32, combined: u32) -> Result<()> {
        let op = format!("ethtool channels set #{ifindex} combined {combined}");
        let resp = self.fam.conn.request(
            self.fam.id,
            0,
            &channels_set_payload(ifindex, combined),
            &op,
        )?;
        if let Some(w) = resp.warning {
            tracing::warn!(ifindex, "{op}: kernel says: {w}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::device::nl::test_attrs::{nest, nla};
    fn bit(name: &str, value: Option<bool>) -> Vec<u8> {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        let mut parts = vec![nla(1, &0u32.to_ne_bytes()), nla(2, &n)];
        if value == Some(true) {
            parts.push(nla(3, &[]));
        }
        nest(1, &parts)
    }

    #[test]
    fn set_request_layout() {
        let p = features_set_payload(5, "hw-tc-offload", true);
        // genl hdr: cmd 12, version 1
        assert_eq!(&p[..2], &[12, 1]);
        let want = [
            nest(
                1,
                &[nla(1, &5u32.to_ne_bytes()), nla(3, &2u32.to_ne_bytes())],
            ),
            nest(
                3,
                &[nest(
                    3,
                    &[nest(1, &[nla(2, b"hw-tc-offload\0"), nla(3, &[])])],
                )],
            ),
        ]
        .concat();
        assert_eq!(&p[4..], &want[..]);
        let off = features_set_payload(5, "hw-tc-offload", false);
        assert!(off.len() < p.len(), "off carries no VALUE flag");
    }

    #[test]
    fn reply_nomask_and_masked_bitsets() {
        // The kernel sends hw/active/nochange as NOMASK lists of set bits; a masked list
        // is also handled (VALUE flag).
        let mut p = vec![MSG_FEATURES_GET_REPLY, 1, 0, 0];
        p.extend(nest(1, &[nla(1, &3u32.to_ne_bytes())]));
        p.extend(nest(
            2,
            &[
                nla(1, &[]),
                nla(2, &64u32.to_ne_bytes()),
                nest(3, &[bit("rx-gro", None), bit("hw-tc-offload", None)]),
            ],
        ));
        p.extend(nest(
            3,
            &[nest(
                3,
                &[bit("hw-tc-offload", Some(false)), bit("rx-gro", Some(true))],
            )],
        ));
        p.extend(nest(4, &[nla(1, &[]), nest(3, &[bit("rx-gro", None)])]));
        p.extend(nest(
            5,
            &[nla(1, &[]), nest(3, &[bit("netns-local", None)])],
        ));
        let f = parse_feature(&p, "hw-tc-offload").unwrap();
        assert_eq!(
            f,
            Feature {
                active: false,
                wanted: false,
                changeable: true
            }
        );
        let g = parse_feature(&p, "rx-gro").unwrap();
        assert_eq!(
            g,
            Feature {
                active: true,
                wanted: true,
                changeable: true
            }
        );
        let n = parse_feature(&p, "netns-local").unwrap();
        assert!(!n.changeable);
    }

    #[test]
    fn channels_reply() {
        let mut p = vec![MSG_CHANNELS_GET_REPLY, 1, 0, 0];
        p.extend(nest(1, &[nla(1, &3u32.to_ne_bytes())]));
        p.extend(nla(5, &63u32.to_ne_bytes()));
        p.extend(nla(9, &8u32.to_ne_bytes()));
        assert_eq!(
            parse_channels(&p).unwrap(),
            Channels {
                combined: Some(8),
                combined_max: Some(63)
            }
        );
        let s = channels_set_payload(3, 18);
        assert_eq!(&s[..2], &[18, 1]);
        assert_eq!(
            &s[4..],
            &[
                nest(1, &[nla(1, &3u32.to_ne_bytes())]),
                nla(9, &18u32.to_ne_bytes())
            ]
            .concat()[..]
        );
    }

    #[test]
    fn feature_index_from_strset_reply() {
        let string = |i: u32, v: &str| {
            let mut n = v.as_bytes().to_vec();
            n.push(0);
            nest(1, &[nla(1, &i.to_ne_bytes()), nla(2, &n)])
        };
        let mut p = vec![MSG_STRSET_GET_REPLY, 1, 0, 0];
        p.extend(nest(
            2,
            &[nest(
                1,
                &[
                    nla(1, &4u32.to_ne_bytes()),
                    nla(2, &3u32.to_ne_bytes()),
                    nest(
                        3,
                        &[
                            string(0, "tx-scatter-gather"),
                            string(41, "hw-tc-offload"),
                            string(2, "rx-gro"),
                        ],
                    ),
                ],
            )],
        ));
        assert_eq!(parse_feature_index(&p, "hw-tc-offload").unwrap(), 41);
        assert!(matches!(
            parse_feature_index(&p, "no-such-feature"),
            Err(Error::NotFound(_))
        ));
        // the request: header naming lo, STRINGSETS { STRINGSET { ID = ETH_SS_FEATURES } }
        let q = feature_names_payload();
        assert_eq!(&q[..2], &[1, 1]);
        let want = [
            nest(1, &[nla(2, b"lo\0")]),
            nest(2, &[nest(1, &[nla(1, &4u32.to_ne_bytes())])]),
        ]
        .concat();
        assert_eq!(&q[4..], &want[..]);
    }

    #[test]
    fn compact_feature_reply_of_a_dump() {
        // bit 41 = word 1, bit 9; NOMASK sets for hw/active/nochange, a masked wanted set
        let words = |w0: u32, w1: u32| [w0.to_ne_bytes(), w1.to_ne_bytes()].concat();
        let nomask = |kind: u16, w1: u32| {
            nest(
                kind,
                &[
                    nla(1, &[]),
                    nla(2, &64u32.to_ne_bytes()),
                    nla(4, &words(0, w1)),
                ],
            )
        };
        let mut p = vec![MSG_FEATURES_GET_REPLY, 1, 0, 0];
        p.extend(nest(
            1,
            &[nla(1, &7u32.to_ne_bytes()), nla(2, b"eni10npf0vf0\0")],
        ));
        p.extend(nomask(2, 1 << 9));
        p.extend(nest(
            3,
            &[
                nla(2, &64u32.to_ne_bytes()),
                nla(4, &words(0, 1 << 9)),
                nla(5, &words(0, 0)),
            ],
        ));
        p.extend(nomask(4, 1 << 9));
        p.extend(nomask(5, 0));
        let (idx, f) = parse_feature_compact(&p, 41).unwrap();
        assert_eq!(idx, 7);
        assert_eq!(
            f,
            Feature {
                active: true,
                wanted: false,
                changeable: true
            },
            "wanted: value set but outside the mask"
        );
        let (_, other) = parse_feature_compact(&p, 40).unwrap();
        assert!(!other.active && !other.changeable);
        // a bit beyond the arrays is off, not an error
        assert!(!parse_feature_compact(&p, 200).unwrap().1.active);
        // the dump request carries only the COMPACT flag
        assert_eq!(
            &features_dump_payload()[4..],
            &nest(1, &[nla(3, &1u32.to_ne_bytes())])[..]
        );
        assert_eq!(channels_dump_payload().len(), 4, "no header at all");
    }

    #[test]
    fn channels_reply_names_its_device() {
        let mut p = vec![MSG_CHANNELS_GET_REPLY, 1, 0, 0];
        p.extend(nest(1, &[nla(1, &9u32.to_ne_bytes())]));
        p.extend(nla(9, &2u32.to_ne_bytes()));
        let (idx, ch) = parse_channels_of(&p).unwrap();
        assert_eq!((idx, ch.combined, ch.combined_max), (9, Some(2), None));
        let mut headless = vec![MSG_CHANNELS_GET_REPLY, 1, 0, 0];
        headless.extend(nla(9, &2u32.to_ne_bytes()));
        assert!(parse_channels_of(&headless).is_err());
    }
}
