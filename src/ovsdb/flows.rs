//! `dpctl/dump-flows` output, as far as vflag reads it (which port a flow enters on).

use serde::Serialize;
use std::collections::BTreeMap;

/// One datapath flow from `dpctl/dump-flows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DpFlow {
    /// The port in `in_port(...)`: a name with `--names`, else the datapath port number.
    pub in_port: Option<String>,
    /// The match part, e.g. `in_port(bond0),eth(...),eth_type(0x0800),ipv4(frag=no)`.
    pub matches: String,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    /// `used:` as printed (`0.550s`, `never`).
    pub used: Option<String>,
    /// Other `key:value` fields between the statistics and the actions (`dp:tc`,
    /// `offloaded:yes`, `flags:...`, `ufid:...`).
    pub fields: BTreeMap<String, String>,
    pub actions: String,
}

/// Parse `dpctl/dump-flows` text (one flow per line; headers and blank lines skipped).
pub fn parse_dump_flows(text: &str) -> Vec<DpFlow> {
    text.lines().filter_map(parse_flow_line).collect()
}

fn parse_flow_line(line: &str) -> Option<DpFlow> {
    let line = line.trim();
    let act = line.rfind("actions:")?;
    let mut fields = BTreeMap::new();
    // With -m, userspace datapaths append `, dp-extra-info:...` after the actions.
    let mut actions = &line[act + "actions:".len()..];
    if let Some((a, extra)) = actions.split_once(", dp-extra-info:") {
        fields.insert("dp-extra-info".to_string(), extra.trim().to_string());
        actions = a;
    }
    let actions = actions.trim().to_string();
    let head = line[..act].trim_end().trim_end_matches(',');
    // `ufid:<uuid>, ` may precede the match (with -m).
    let mut rest = head;
    if let Some(after) = rest.strip_prefix("ufid:") {
        let (ufid, r) = after.split_once(", ")?;
        fields.insert("ufid".to_string(), ufid.to_string());
        rest = r;
    }
    let (matches, stats) = match rest.find(", packets:") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, ""),
    };
    let mut packets = None;
    let mut bytes = None;
    let mut used = None;
    for kv in stats.split(", ").filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once(':')?;
        match k {
            "packets" => packets = v.parse().ok(),
            "bytes" => bytes = v.parse().ok(),
            "used" => used = Some(v.to_string()),
            _ => {
                fields.insert(k.to_string(), v.to_string());
            }
        }
    }
    let in_port = matches.find("in_port(").and_then(|i| {
        let s = &matches[i + "in_port(".len()..];
        s.find(')').map(|j| s[..j].to_string())
    });
    Some(DpFlow {
        in_port,
        matches: matches.to_string(),
        packets,
        bytes,
        used,
        fields,
        actions,
    })
}

/// How many flows enter on each of `ports` (each port is a key, 0 when none).
pub fn count_flows_by_in_port(flows: &[DpFlow], ports: &[&str]) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = ports.iter().map(|p| (p.to_string(), 0)).collect();
    for f in flows {
        if let Some(n) = f.in_port.as_deref().and_then(|p| out.get_mut(p)) {
            *n += 1;
        }
    }
    out
}
