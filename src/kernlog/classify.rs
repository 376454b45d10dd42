//! What a message means: one line's text classified ([`classify`]), then the multi-line
//! `lag map:` form grouped into events ([`parse_events`]).

use super::line::{is_pci_addr, parse_line, LogLine};
use super::*;

/// `mlx5_core_err`/`_warn` put `<func>:<line>:(pid <n>): ` before the message (kernels before
/// 5.4 or so: `<pci>:<func>:<line>:(pid <n>): `); `mlx5_core_info` does not. Strip it if present.
fn strip_err_prefix(text: &str) -> &str {
    let Some(pid_at) = text.find(":(pid ") else {
        return text;
    };
    let Some(close) = text[pid_at..].find("): ") else {
        return text;
    };
    let head = &text[..pid_at];
    let pid = &text[pid_at + ":(pid ".len()..pid_at + close];
    // head = [<pci>:]<func>:<line>
    let Some((func_part, line)) = head.rsplit_once(':') else {
        return text;
    };
    let func = func_part
        .strip_prefix(func_part.get(..12).filter(|p| is_pci_addr(p)).unwrap_or(""))
        .map(|f| f.strip_prefix(':').unwrap_or(f))
        .unwrap_or(func_part);
    let ident = !func.is_empty() && func.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if ident && digits(line) && digits(pid) {
        &text[pid_at + close + "): ".len()..]
    } else {
        text
    }
}

/// Parse `port 1:2 port 2:2 shared_fdb:1 mode:hash` (any subset after the ports).
fn parse_map_tokens(s: &str) -> Option<(Vec<PortMap>, Option<bool>, Option<String>)> {
    let mut ports = Vec::new();
    let mut shared_fdb = None;
    let mut mode = None;
    let mut toks = s.split_whitespace();
    while let Some(t) = toks.next() {
        if t == "port" {
            let (p, to) = toks.next()?.split_once(':')?;
            ports.push(PortMap {
                port: p.parse().ok()?,
                to: to.parse().ok()?,
            });
        } else if let Some(v) = t.strip_prefix("shared_fdb:") {
            shared_fdb = Some(v.parse::<u8>().ok()? != 0);
        } else if let Some(v) = t.strip_prefix("mode:") {
            mode = Some(v.to_string());
        } else {
            return None;
        }
    }
    if ports.is_empty() {
        return None;
    }
    Some((ports, shared_fdb, mode))
}

fn paren_code(s: &str) -> Option<i32> {
    let inner = s.trim().strip_prefix('(')?.split_once(')')?.0;
    inner.trim().parse().ok()
}

/// What a single line's text means (before multi-line grouping).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Event(LagEventKind),
    /// `lag map:` / `modify lag map` with nothing after it: per-port records follow.
    MapHeader(MapChange),
    /// `\tport N:M` / `\tmap port N:M` record of the multi-line form.
    MapPort(PortMap),
}

/// What one line's text means: the extack refusals wherever they appear, everything else only
/// in a line a driver logged on a device (`dev_printk`'s `<driver> <device>: ` prefix; mlx5 logs
/// its LAG lines with `mlx5_core_info/err` on the PCI device).
fn classify(text: &str, on_device: bool) -> Option<Piece> {
    if let Some(reason) = extack_refusal(text) {
        return Some(Piece::Event(LagEventKind::Failure { reason }));
    }
    if !on_device {
        return None;
    }
    let text = strip_err_prefix(text);
    if text.starts_with("modify lag map") || text.starts_with("lag map") {
        return map_line(text);
    }
    if text.starts_with("port ") || text.starts_with("map port ") {
        return map_port(text);
    }
    if text.starts_with("shared_fdb:") {
        return shared_fdb_line(text);
    }
    if text == "Operation mode is single FDB" {
        return Some(Piece::Event(LagEventKind::SingleFdb));
    }
    failure_line(text)
}

/// Refusals delivered as netlink extended-ack warnings.
fn extack_refusal(text: &str) -> Option<LagFailure> {
    if text.contains("Can't activate LAG offload, TX type isn't supported") {
        return Some(LagFailure::TxTypeNotSupported);
    }
    if text.contains("Can't activate LAG offload, PF is configured with more than 64 VFs") {
        return Some(LagFailure::TooManyVfs);
    }
    None
}

/// `modify lag map ...`, `lag map active ports: ...`, `lag map: ...`, `lag map ...`, or the
/// bare header of the multi-line form.
fn map_line(text: &str) -> Option<Piece> {
    let map = |change, rest: &str| {
        let (ports, shared_fdb, mode) = parse_map_tokens(rest)?;
        Some(Piece::Event(LagEventKind::Map {
            change,
            ports,
            shared_fdb,
            mode,
        }))
    };
    if text == "modify lag map" {
        return Some(Piece::MapHeader(MapChange::Modify));
    }
    if let Some(rest) = text.strip_prefix("modify lag map ") {
        return map(MapChange::Modify, rest);
    }
    if let Some(rest) = text.strip_prefix("lag map active ports:") {
        let ports: Option<Vec<u8>> = rest.split(',').map(|p| p.trim().parse().ok()).collect();
        let ports = ports?;
        return (!ports.is_empty()).then_some(Piece::Event(LagEventKind::ActivePorts { ports }));
    }
    if let Some(rest) = text.strip_prefix("lag map:") {
        if rest.trim().is_empty() {
            return Some(Piece::MapHeader(MapChange::Create));
        }
        return map(MapChange::CreateOrModify, rest);
    }
    let rest = text.strip_prefix("lag map ")?;
    map(MapChange::Create, rest)
}

/// `port N:M` / `map port N:M`: one record of the multi-line form.
fn map_port(text: &str) -> Option<Piece> {
    let tokens = text.strip_prefix("map ").unwrap_or(text);
    let (ports, None, None) = parse_map_tokens(tokens)? else {
        return None;
    };
    match ports.as_slice() {
        [one] => Some(Piece::MapPort(*one)),
        _ => None,
    }
}

/// `shared_fdb:%d mode:%s` (mode optional).
fn shared_fdb_line(text: &str) -> Option<Piece> {
    let mut shared_fdb = None;
    let mut mode = None;
    for t in text.split_whitespace() {
        if let Some(v) = t.strip_prefix("shared_fdb:") {
            shared_fdb = Some(v.parse::<u8>().ok()? != 0);
        } else if let Some(v) = t.strip_prefix("mode:") {
            mode = Some(v.to_string());
        } else {
            return None;
        }
    }
    Some(Piece::Event(LagEventKind::SharedFdb {
        shared_fdb: shared_fdb?,
        mode,
    }))
}

/// The driver's `Failed to ...` / `Can't enable ...` lines.
fn failure_line(text: &str) -> Option<Piece> {
    let fail = |reason| Some(Piece::Event(LagEventKind::Failure { reason }));
    if let Some(rest) = text.strip_prefix("Failed to create LAG port selection") {
        return fail(LagFailure::PortSelection(paren_code(rest)?));
    }
    if let Some(rest) = text.strip_prefix("Failed to create LAG ") {
        return fail(LagFailure::Create(paren_code(rest)?));
    }
    if let Some(rest) = text.strip_prefix("Failed to modify LAG ") {
        return Some(Piece::Event(LagEventKind::ModifyFailed {
            code: paren_code(rest)?,
        }));
    }
    if text.starts_with("Failed to activate VF LAG") {
        return fail(LagFailure::ActivateVfLag);
    }
    if text.starts_with("Can't enable single FDB mode") {
        return fail(LagFailure::SingleFdb);
    }
    if text.starts_with("Failed to enable lag") {
        return fail(LagFailure::Enable);
    }
    if text.starts_with("Failed to deactivate VF LAG")
        || text.starts_with("Failed to deactivate RoCE LAG")
    {
        return fail(LagFailure::Deactivate);
    }
    None
}

/// Devices that logged lines in mlx5's formats under their own `dev_printk` prefix: a LAG line
/// (map, `shared_fdb:`, single FDB, a failure) or an eSwitch line (`E-Switch: `, mlx5's
/// `esw_info`/`esw_warn`, e.g. `E-Switch: Enable: mode(OFFLOADS), nvfs(4), ...` at every
/// eSwitch mode change). A driver that logs these logs its LAG there too, so its silence about
/// the LAG means "not yet"; for any other device silence means nothing.
pub fn mlx5_format_devices<S: AsRef<str>>(lines: &[S]) -> std::collections::BTreeSet<String> {
    records(lines)
        .into_iter()
        .filter(|r| r.driver.is_some())
        .filter(|r| {
            r.text.starts_with("E-Switch: ")
                || (extack_refusal(&r.text).is_none() && classify(&r.text, true).is_some())
        })
        .filter_map(|r| r.device)
        .collect()
}

/// Lines parsed, kmsg `DEVICE=+pci:...` continuation lines attached to their record.
fn records<S: AsRef<str>>(lines: &[S]) -> Vec<LogLine> {
    let mut records: Vec<LogLine> = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let raw = raw.as_ref();
        if let Some(cont) = raw.strip_prefix(' ') {
            if let (Some(last), Some(pci)) =
                (records.last_mut(), cont.trim().strip_prefix("DEVICE=+pci:"))
            {
                if last.device.is_none() && is_pci_addr(pci) {
                    last.device = Some(pci.to_string());
                }
            }
            continue;
        }
        if let Some(l) = parse_line(raw, i) {
            records.push(l);
        }
    }
    records
}

/// Turn log lines into LAG events, grouping the multi-line `lag map:` form.
pub fn parse_events<S: AsRef<str>>(lines: &[S]) -> Vec<LagEvent> {
    let records = records(lines);
    let mut events = Vec::new();
    // Open multi-line maps per device: (stamp of the header, kind, ports so far).
    type Open = BTreeMap<Option<String>, (Stamp, MapChange, Vec<PortMap>)>;
    let mut open: Open = BTreeMap::new();
    let close = |open: &mut Open, dev: &Option<String>, events: &mut Vec<LagEvent>| {
        if let Some((at, change, ports)) = open.remove(dev) {
            if !ports.is_empty() {
                events.push(LagEvent {
                    at,
                    device: dev.clone(),
                    kind: LagEventKind::Map {
                        change,
                        ports,
                        shared_fdb: None,
                        mode: None,
                    },
                });
            }
        }
    };
    for rec in records {
        let Some(piece) = classify(&rec.text, rec.driver.is_some()) else {
            continue;
        };
        match piece {
            Piece::MapHeader(change) => {
                close(&mut open, &rec.device, &mut events);
                open.insert(rec.device.clone(), (rec.at, change, Vec::new()));
            }
            Piece::MapPort(p) => {
                if let Some((_, _, ports)) = open.get_mut(&rec.device) {
                    ports.push(p);
                }
            }
            Piece::Event(kind) => {
                close(&mut open, &rec.device, &mut events);
                events.push(LagEvent {
                    at: rec.at,
                    device: rec.device,
                    kind,
                });
            }
        }
    }
    let devs: Vec<Option<String>> = open.keys().cloned().collect();
    for d in devs {
        close(&mut open, &d, &mut events);
    }
    events.sort_by_key(|e| e.at.line);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_single_line_form() {
        let m = |s: &str| classify(s, true);
        assert_eq!(
            m("lag map port 1:2 port 2:2"),
            Some(Piece::Event(LagEventKind::Map {
                change: MapChange::Create,
                ports: vec![PortMap { port: 1, to: 2 }, PortMap { port: 2, to: 2 }],
                shared_fdb: None,
                mode: None
            }))
        );
        assert!(matches!(
            m("modify lag map port 1:1 port 2:2"),
            Some(Piece::Event(LagEventKind::Map {
                change: MapChange::Modify,
                ..
            }))
        ));
        assert!(matches!(
            m("lag map port 1:1 port 2:1 shared_fdb:1 mode:hash"),
            Some(Piece::Event(LagEventKind::Map { shared_fdb: Some(true), mode: Some(ref md), .. })) if md == "hash"
        ));
        assert_eq!(m("lag map:"), Some(Piece::MapHeader(MapChange::Create)));
        assert_eq!(
            m("modify lag map"),
            Some(Piece::MapHeader(MapChange::Modify))
        );
        assert_eq!(
            m("map port 1:2"),
            Some(Piece::MapPort(PortMap { port: 1, to: 2 }))
        );
        assert_eq!(
            m("port 2:1"),
            Some(Piece::MapPort(PortMap { port: 2, to: 1 }))
        );
        assert!(matches!(
            m("lag map active ports: 1, 2"),
            Some(Piece::Event(LagEventKind::ActivePorts { ref ports })) if ports == &[1, 2]
        ));
        assert_eq!(
            m("Failed to create LAG (-22)"),
            Some(Piece::Event(LagEventKind::Failure {
                reason: LagFailure::Create(-22)
            }))
        );
        assert_eq!(m("lag map port x:y"), None);
        assert_eq!(m("something else entirely"), None);
        // Without the mlx5 prefix only the extack refusals count.
        assert_eq!(classify("lag map port 1:2 port 2:2", false), None);
        assert!(classify(
            "Warning: mlx5_core: Can't activate LAG offload, TX type isn't supported.",
            false
        )
        .is_some());
    }

    #[test]
    fn err_prefixes_are_stripped() {
        assert_eq!(
            strip_err_prefix("mlx5_create_lag:308:(pid 1207): Failed to create LAG (-22)"),
            "Failed to create LAG (-22)"
        );
        assert_eq!(
            strip_err_prefix(
                "0000:5e:00.0:mlx5_create_lag:241:(pid 512): Failed to create LAG (-5)"
            ),
            "Failed to create LAG (-5)"
        );
        assert_eq!(
            strip_err_prefix("lag map port 1:1 port 2:2"),
            "lag map port 1:1 port 2:2"
        );
        assert_eq!(
            strip_err_prefix("odd text:(pid x): y"),
            "odd text:(pid x): y"
        );
    }
}
