//! mlx5 LAG lines in the kernel log, in every format the kernel has used.
//!
//! The mlx5 driver has announced LAG (bond offload) state changes in several ways over the years;
//! all are recognised here (the device prefix `mlx5_core 0000:37:00.0: ` is the driver's
//! `dev_info` prefix and is shown once):
//!
//! | kernel era | lines |
//! | --- | --- |
//! | oldest | `lag map port 1:2 port 2:2` on creation, `modify lag map port 1:1 port 2:2` on failover |
//! | shared FDB | `lag map port 1:1 port 2:1 shared_fdb:1`, then `... shared_fdb:1 mode:hash` |
//! | multi-port | creation: `lag map:`, one `\tport N:M` record per port, `shared_fdb:%d mode:%s`; failover: `modify lag map`, one `\tmap port N:M` record per port |
//! | newest | `lag map: port 1:1 port 2:2` (or `lag map active ports: 1, 2` in hash mode) then `shared_fdb:%d mode:%s`; remaps print the map line again |
//!
//! plus `Operation mode is single FDB`, `Failed to create LAG (%d)`, `Failed to modify LAG (%d)`,
//! `Failed to activate VF LAG`, `Can't enable single FDB mode`, `Failed to enable lag`,
//! `Failed to deactivate VF LAG; ...`, and the two refusals that the driver returns as netlink
//! extended-ack warnings ("Can't activate LAG offload, TX type isn't supported" and "... PF is
//! configured with more than 64 VFs"). Those two reach a log only through the program that
//! enslaved the PF (iproute2 prints `Warning: mlx5_core: ...`), so they are recognised anywhere in
//! a line and, without a PCI address in the line, reported as unattributed.
//!
//! Note: a `lag map` line alone does not prove VF-LAG: the same lines are printed for a RoCE LAG
//! (PFs bonded while in legacy mode), and on the newest kernels the map is printed *before* the
//! firmware command that may still fail. The debugfs `lag/type` file ("switchdev" vs "roce")
//! tells the two apart; [`read_debugfs_lag`] reads it.
//!
//! Input lines may come from `/dev/kmsg` (`prio,seq,usec,flags;message`, dictionary continuation
//! lines start with a space, non-printable bytes escaped as `\xNN`), from `dmesg`
//! (`[   44.064025] mlx5_core ...`), or from `journalctl -k` (`Nov 25 ... kernel: mlx5_core ...`).
//!
//! OVS's `failed to offload flow: <reason>: <port>` log lines are parsed by
//! [`parse_ovs_offload_error`].

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::Serialize;

use crate::paths::Root;

/// Where a log line came from in time. Every field is optional because each log format carries a
/// different subset; `line` (0-based position in the input) always orders events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// Microseconds since boot (kmsg `usec` field, or the dmesg `[seconds.micros]` prefix).
    pub usec: Option<u64>,
    /// kmsg sequence number.
    pub seq: Option<u64>,
    /// Position of the line in the input given to the parser.
    pub line: usize,
}

/// One `port N:M` pair of a LAG map: traffic of virtual port `port` leaves through physical
/// port `to` (so `1:2 2:2` means everything goes out of port 2, i.e. port 1 is down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortMap {
    pub port: u8,
    pub to: u8,
}

/// Why the LAG is not (or no longer) offloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "code")]
pub enum LagFailure {
    /// `Failed to create LAG (%d)`: the firmware refused; the code is the errno-style value.
    Create(i32),
    /// `Failed to create LAG port selection(%d)` (hash mode).
    PortSelection(i32),
    /// `Failed to activate VF LAG` (usually after one of the above; VFs must be unbound).
    ActivateVfLag,
    /// `Can't enable single FDB mode`.
    SingleFdb,
    /// `Failed to enable lag` (representor reload failed after activation; LAG torn down).
    Enable,
    /// `Failed to deactivate VF LAG; driver restart required` (or the RoCE variant).
    Deactivate,
    /// "Can't activate LAG offload, TX type isn't supported" (bond mode not active-backup/hash).
    TxTypeNotSupported,
    /// "Can't activate LAG offload, PF is configured with more than 64 VFs".
    TooManyVfs,
}

impl LagFailure {
    /// A short operator hint for this failure.
    pub fn hint(&self) -> &'static str {
        match self {
            LagFailure::Create(_) | LagFailure::ActivateVfLag | LagFailure::PortSelection(_) => {
                "firmware refused the LAG: make sure all VFs are unbound before the PFs join the bond"
            }
            LagFailure::SingleFdb => "shared FDB could not be enabled (check firmware version)",
            LagFailure::Enable => "representors could not be reloaded; LAG was torn down",
            LagFailure::Deactivate => "LAG could not be deactivated; a driver restart is required",
            LagFailure::TxTypeNotSupported => {
                "bond mode must be active-backup, balance-xor or 802.3ad"
            }
            LagFailure::TooManyVfs => "at most 64 VFs per PF are supported with VF-LAG",
        }
    }
}

/// Which kind of map line was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapChange {
    /// `lag map port ...`, or the multi-line `lag map:` + `\tport N:M` group: printed only
    /// when the LAG is created.
    Create,
    /// `modify lag map port ...`, or the multi-line `modify lag map` + `\tmap port N:M` group:
    /// a failover remap.
    Modify,
    /// `lag map: port ...` or `lag map active ports: ...` (newest kernels): printed both on
    /// creation (then followed by a `shared_fdb:` line) and on remap.
    CreateOrModify,
}

/// What one recognised log line (or multi-line group) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum LagEventKind {
    /// A port map. `shared_fdb`/`mode` are set when the same line carried them (the 5.x
    /// single-line formats).
    Map {
        change: MapChange,
        ports: Vec<PortMap>,
        shared_fdb: Option<bool>,
        mode: Option<String>,
    },
    /// `lag map active ports: 1, 2` (hash mode on the newest kernels; creation or remap).
    ActivePorts { ports: Vec<u8> },
    /// A stand-alone `shared_fdb:%d mode:%s` line (printed on creation by newer kernels).
    SharedFdb {
        shared_fdb: bool,
        mode: Option<String>,
    },
    /// `Operation mode is single FDB`.
    SingleFdb,
    /// `Failed to modify LAG (%d)`: the LAG stays up with its previous map.
    ModifyFailed { code: i32 },
    /// A failure or refusal: the LAG is not offloaded.
    Failure { reason: LagFailure },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LagEvent {
    pub at: Stamp,
    /// PCI address (`0000:37:00.0`) of the device that logged it, when known.
    pub device: Option<String>,
    #[serde(flatten)]
    pub kind: LagEventKind,
}

/// The state a device's kernel log implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LagState {
    Active {
        /// Latest port map (empty when only `active ports` were logged).
        ports: Vec<PortMap>,
        /// Hash mode on the newest kernels: the ports that carry traffic.
        active_ports: Option<Vec<u8>>,
        shared_fdb: Option<bool>,
        /// `queue_affinity`, `hash` or `mpesw` where the kernel said so.
        mode: Option<String>,
        single_fdb: bool,
        /// When the LAG was (last) created.
        since: Stamp,
        /// Map changes (failovers) logged since then.
        remaps: u32,
    },
    Failed {
        reason: LagFailure,
        at: Stamp,
    },
}

impl LagState {
    pub fn is_active(&self) -> bool {
        matches!(self, LagState::Active { .. })
    }
}

/// Everything the log says about one PCI device (the LAG's first PF logs for the pair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceLag {
    pub device: String,
    pub state: LagState,
    /// The newest event for this device.
    pub last_event: LagEvent,
    /// The newest `Failed to modify LAG` (LAG kept running with its old map), if any.
    pub last_modify_failure: Option<LagEvent>,
    /// Number of recognised events for this device.
    pub events: usize,
}

/// The outcome of parsing a log: per PCI device state, plus recognised lines that named no
/// PCI device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LagReport {
    pub devices: BTreeMap<String, DeviceLag>,
    pub unattributed: Vec<LagEvent>,
}

impl LagReport {
    /// The entry for `pci`, or for another function of the same NIC (the kernel logs LAG
    /// lines on the pair's first PF only, so asking for `0000:37:00.1` finds `0000:37:00.0`).
    pub fn for_pf(&self, pci: &str) -> Option<&DeviceLag> {
        if let Some(d) = self.devices.get(pci) {
            return Some(d);
        }
        let nic = nic_of(pci)?;
        self.devices
            .values()
            .find(|d| nic_of(&d.device) == Some(nic))
    }
}

/// `0000:37:00.1` -> `0000:37:00` (domain, bus, device: one physical NIC).
fn nic_of(pci: &str) -> Option<&str> {
    pci.rsplit_once('.').map(|(nic, _)| nic)
}

/// A log line split into time, device and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: Stamp,
    /// PCI address from the `mlx5_core <pci>: ` prefix or the kmsg `DEVICE=+pci:` field.
    pub device: Option<String>,
    /// Whether the message carried the `mlx5_core <pci>: ` prefix.
    pub mlx5: bool,
    /// The message after the device prefix, unescaped and trimmed.
    pub text: String,
}

fn is_pci_addr(s: &str) -> bool {
    // dddd:bb:dd.f (hex digits; function 0-7)
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_hexdigit())
        && (b'0'..=b'7').contains(&b[11])
}

/// Undo kmsg's `\xNN` escaping (it escapes control characters, e.g. a tab as `\x09`).
fn unescape_kmsg(s: &str) -> String {
    if !s.contains("\\x") {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(hex) = s.get(i + 2..i + 4) {
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split a kmsg record header `prio,seq,usec,flags;message`.
fn split_kmsg(line: &str) -> Option<(u64, u64, &str)> {
    let (head, msg) = line.split_once(';')?;
    let mut f = head.split(',');
    let prio = f.next()?;
    let seq = f.next()?.parse().ok()?;
    let usec = f.next()?.parse().ok()?;
    if prio.is_empty() || !prio.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((seq, usec, msg))
}

/// `[   44.064025] rest` -> (44064025, rest).
fn split_dmesg(line: &str) -> Option<(Option<u64>, &str)> {
    let rest = line.strip_prefix('[')?;
    let (inside, after) = rest.split_once(']')?;
    let inside = inside.trim();
    let usec = inside.split_once('.').and_then(|(s, frac)| {
        let secs: u64 = s.parse().ok()?;
        if frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // Scale the fraction to microseconds whatever its width.
        let mut micros: u64 = 0;
        for c in frac.bytes().chain(std::iter::repeat(b'0')).take(6) {
            micros = micros * 10 + u64::from(c - b'0');
        }
        Some(secs * 1_000_000 + micros)
    });
    Some((usec, after.strip_prefix(' ').unwrap_or(after)))
}

/// Find `mlx5_core <pci>: ` anywhere in `msg`; return the PCI address and the text after it.
fn split_mlx5_prefix(msg: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(pos) = msg[from..].find("mlx5_core ") {
        let start = from + pos + "mlx5_core ".len();
        let rest = &msg[start..];
        if let Some(pci) = rest.get(..12) {
            if is_pci_addr(pci) {
                if let Some(text) = rest[12..].strip_prefix(':') {
                    return Some((pci, text));
                }
            }
        }
        from = start;
    }
    None
}

/// Parse one log line of any supported format. kmsg dictionary continuation lines (starting
/// with a space) return `None`; [`parse_lines`] attaches them to their record.
pub fn parse_line(line: &str, index: usize) -> Option<LogLine> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.starts_with(' ') || line.is_empty() {
        return None;
    }
    let mut at = Stamp {
        line: index,
        ..Stamp::default()
    };
    let msg: String = if let Some((seq, usec, msg)) = split_kmsg(line) {
        at.seq = Some(seq);
        at.usec = Some(usec);
        unescape_kmsg(msg)
    } else if let Some((usec, rest)) = split_dmesg(line) {
        at.usec = usec;
        rest.to_string()
    } else {
        line.to_string()
    };
    let (device, mlx5, text) = match split_mlx5_prefix(&msg) {
        Some((pci, text)) => (Some(pci.to_string()), true, text.trim().to_string()),
        None => (None, false, msg.trim().to_string()),
    };
    Some(LogLine {
        at,
        device,
        mlx5,
        text,
    })
}

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

fn classify(text: &str, mlx5: bool) -> Option<Piece> {
    // Refusals delivered as extack warnings: recognised wherever they appear.
    if text.contains("Can't activate LAG offload, TX type isn't supported") {
        return Some(Piece::Event(LagEventKind::Failure {
            reason: LagFailure::TxTypeNotSupported,
        }));
    }
    if text.contains("Can't activate LAG offload, PF is configured with more than 64 VFs") {
        return Some(Piece::Event(LagEventKind::Failure {
            reason: LagFailure::TooManyVfs,
        }));
    }
    if !mlx5 {
        return None;
    }
    let text = strip_err_prefix(text);
    let ev = |kind| Some(Piece::Event(kind));
    if text == "modify lag map" {
        return Some(Piece::MapHeader(MapChange::Modify));
    }
    if let Some(rest) = text.strip_prefix("modify lag map ") {
        let (ports, shared_fdb, mode) = parse_map_tokens(rest)?;
        return ev(LagEventKind::Map {
            change: MapChange::Modify,
            ports,
            shared_fdb,
            mode,
        });
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
        let (ports, shared_fdb, mode) = parse_map_tokens(rest)?;
        return ev(LagEventKind::Map {
            change: MapChange::CreateOrModify,
            ports,
            shared_fdb,
            mode,
        });
    }
    if let Some(rest) = text.strip_prefix("lag map ") {
        let (ports, shared_fdb, mode) = parse_map_tokens(rest)?;
        return ev(LagEventKind::Map {
            change: MapChange::Create,
            ports,
            shared_fdb,
            mode,
        });
    }
    if text.starts_with("port ") || text.starts_with("map port ") {
        let tokens = text.strip_prefix("map ").unwrap_or(text);
        let (ports, None, None) = parse_map_tokens(tokens)? else {
            return None;
        };
        return match ports.as_slice() {
            [one] => Some(Piece::MapPort(*one)),
            _ => None,
        };
    }
    if text.starts_with("shared_fdb:") {
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
        return ev(LagEventKind::SharedFdb {
            shared_fdb: shared_fdb?,
            mode,
        });
    }
    if text == "Operation mode is single FDB" {
        return ev(LagEventKind::SingleFdb);
    }
    let fail = |reason| ev(LagEventKind::Failure { reason });
    if let Some(rest) = text.strip_prefix("Failed to create LAG port selection") {
        return fail(LagFailure::PortSelection(paren_code(rest)?));
    }
    if let Some(rest) = text.strip_prefix("Failed to create LAG ") {
        return fail(LagFailure::Create(paren_code(rest)?));
    }
    if let Some(rest) = text.strip_prefix("Failed to modify LAG ") {
        return ev(LagEventKind::ModifyFailed {
            code: paren_code(rest)?,
        });
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

/// Turn log lines into LAG events, grouping the multi-line `lag map:` form.
pub fn parse_events<S: AsRef<str>>(lines: &[S]) -> Vec<LagEvent> {
    // Pre-pass: attach kmsg `DEVICE=+pci:...` continuation lines to their record.
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
        let Some(piece) = classify(&rec.text, rec.mlx5) else {
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

/// Fold events (in log order) into a per-device report.
pub fn fold_events(events: Vec<LagEvent>) -> LagReport {
    let mut report = LagReport::default();
    for ev in events {
        let Some(dev) = ev.device.clone() else {
            report.unattributed.push(ev);
            continue;
        };
        let entry = report.devices.remove(&dev);
        let (prev_state, prev_event, modfail, count) = match entry {
            Some(d) => (
                Some(d.state),
                Some(d.last_event),
                d.last_modify_failure,
                d.events,
            ),
            None => (None, None, None, 0),
        };
        let mut last_modify_failure = modfail;
        let state = next_state(prev_state, prev_event.as_ref(), &ev);
        if matches!(ev.kind, LagEventKind::ModifyFailed { .. }) {
            last_modify_failure = Some(ev.clone());
        }
        let Some(state) = state else {
            // An event that implies nothing without an active LAG (e.g. a lone
            // `Operation mode is single FDB`): remember it but report no state.
            continue;
        };
        report.devices.insert(
            dev.clone(),
            DeviceLag {
                device: dev,
                state,
                last_event: ev,
                last_modify_failure,
                events: count + 1,
            },
        );
    }
    report
}

fn next_state(
    prev: Option<LagState>,
    prev_event: Option<&LagEvent>,
    ev: &LagEvent,
) -> Option<LagState> {
    let fresh = |ports: Vec<PortMap>, active_ports, shared_fdb, mode| LagState::Active {
        ports,
        active_ports,
        shared_fdb,
        mode,
        single_fdb: false,
        since: ev.at,
        remaps: 0,
    };
    match (&ev.kind, prev) {
        (LagEventKind::Failure { reason }, _) => Some(LagState::Failed {
            reason: reason.clone(),
            at: ev.at,
        }),
        (LagEventKind::ModifyFailed { .. }, prev) => prev,
        (
            LagEventKind::Map {
                change,
                ports,
                shared_fdb,
                mode,
            },
            Some(LagState::Active {
                active_ports,
                shared_fdb: sf,
                mode: md,
                single_fdb,
                since,
                remaps,
                ..
            }),
        ) if *change != MapChange::Create => Some(LagState::Active {
            ports: ports.clone(),
            active_ports,
            shared_fdb: shared_fdb.or(sf),
            mode: mode.clone().or(md),
            single_fdb,
            since,
            remaps: remaps + 1,
        }),
        // Creation, or a remap whose creation is no longer in the log: active from here on.
        (
            LagEventKind::Map {
                ports,
                shared_fdb,
                mode,
                ..
            },
            _,
        ) => Some(fresh(ports.clone(), None, *shared_fdb, mode.clone())),
        (
            LagEventKind::ActivePorts { ports },
            Some(LagState::Active {
                ports: map,
                shared_fdb,
                mode,
                single_fdb,
                since,
                remaps,
                ..
            }),
        ) => Some(LagState::Active {
            ports: map,
            active_ports: Some(ports.clone()),
            shared_fdb,
            mode,
            single_fdb,
            since,
            remaps: remaps + 1,
        }),
        (LagEventKind::ActivePorts { ports }, _) => {
            Some(fresh(Vec::new(), Some(ports.clone()), None, None))
        }
        (LagEventKind::SharedFdb { shared_fdb, mode }, prev) => {
            // Newer kernels print this on creation only, right after the map: that map (if it
            // was the previous event) started this LAG, and earlier remaps belong to an older one.
            let map_before = prev_event.filter(|e| {
                matches!(
                    e.kind,
                    LagEventKind::Map { .. } | LagEventKind::ActivePorts { .. }
                )
            });
            match (prev, map_before) {
                (
                    Some(LagState::Active {
                        ports,
                        active_ports,
                        ..
                    }),
                    Some(map_ev),
                ) => Some(LagState::Active {
                    ports,
                    active_ports,
                    shared_fdb: Some(*shared_fdb),
                    mode: mode.clone(),
                    single_fdb: false,
                    since: map_ev.at,
                    remaps: 0,
                }),
                // No map logged just before (log begins here, or map lines were filtered out).
                _ => Some(fresh(Vec::new(), None, Some(*shared_fdb), mode.clone())),
            }
        }
        (
            LagEventKind::SingleFdb,
            Some(LagState::Active {
                ports,
                active_ports,
                shared_fdb,
                mode,
                since,
                remaps,
                ..
            }),
        ) => Some(LagState::Active {
            ports,
            active_ports,
            shared_fdb: Some(shared_fdb.unwrap_or(true)),
            mode,
            single_fdb: true,
            since,
            remaps,
        }),
        (LagEventKind::SingleFdb, prev) => prev,
    }
}

/// Parse lines (any supported format, mixed) into a per-device LAG report.
pub fn parse_lag<S: AsRef<str>>(lines: &[S]) -> LagReport {
    fold_events(parse_events(lines))
}

/// Upper bound on what [`read_kmsg`] reads (the kernel ring buffer is normally far smaller).
const KMSG_MAX_BYTES: usize = 16 << 20;

/// Read the kernel log from `/dev/kmsg` (under `root`) without ever waiting: the file is opened
/// `O_NONBLOCK` and read record by record until `EAGAIN` (or end of file, when tests point the
/// root at a plain file). Records overwritten while reading (`EPIPE`) are skipped. Returns the
/// lines (records and their continuation lines).
pub fn read_kmsg(root: &Root) -> io::Result<Vec<String>> {
    let path = root.path("/dev/kmsg");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(&path)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut data = Vec::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                data.extend_from_slice(&buf[..n]);
                if data.len() >= KMSG_MAX_BYTES {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&data)
        .lines()
        .map(str::to_string)
        .collect())
}

/// `/dev/kmsg` read and parsed.
pub fn kmsg_lag_report(root: &Root) -> io::Result<LagReport> {
    Ok(parse_lag(&read_kmsg(root)?))
}

/// The mlx5 debugfs view of a device's LAG (`/sys/kernel/debug/mlx5/<pci>/lag/`, kernel 5.19+).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebugfsLag {
    /// `state`: true for "active", false for "disabled".
    pub active: bool,
    /// `type` ("switchdev" for VF-LAG, "roce", "multipath", "multiport_eswitch"): only readable
    /// while active.
    pub lag_type: Option<String>,
    /// `port_sel_mode` ("queue_affinity", "hash", "mpesw"): only readable while active.
    pub port_sel_mode: Option<String>,
    /// `flags` `shared_fdb:on|off`: only readable while active.
    pub shared_fdb: Option<bool>,
    /// `members`: PCI addresses of the PFs in the LAG.
    pub members: Vec<String>,
    /// `mapping`: `port:tx-port` lines (queue affinity) or the tx-enabled port numbers (hash,
    /// `mapping_show` in lag/debugfs.c): only readable while active.
    pub mapping: Vec<String>,
}

/// The debugfs directory for a device.
pub fn debugfs_lag_dir(root: &Root, pci: &str) -> PathBuf {
    root.path(format!("/sys/kernel/debug/mlx5/{pci}/lag"))
}

/// Read the debugfs LAG files of `pci`. `Ok(None)` when there is no `lag/state` file (debugfs
/// not mounted, kernel older than 5.19, or not an mlx5 device). Files that the kernel refuses to
/// show while the LAG is down (EINVAL) are left empty.
pub fn read_debugfs_lag(root: &Root, pci: &str) -> io::Result<Option<DebugfsLag>> {
    let dir = debugfs_lag_dir(root, pci);
    let state = match std::fs::read_to_string(dir.join("state")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let active = match state.trim() {
        "active" => true,
        "disabled" => false,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: unexpected content {other:?}",
                    dir.join("state").display()
                ),
            ))
        }
    };
    let opt = |name: &str| -> Option<String> {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let shared_fdb = opt("flags").and_then(|f| {
        f.lines().find_map(|l| match l.trim() {
            "shared_fdb:on" => Some(true),
            "shared_fdb:off" => Some(false),
            _ => None,
        })
    });
    let lines = |name: &str| -> Vec<String> {
        opt(name)
            .map(|m| {
                m.lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Some(DebugfsLag {
        active,
        lag_type: opt("type"),
        port_sel_mode: opt("port_sel_mode"),
        shared_fdb,
        members: lines("members"),
        mapping: lines("mapping"),
    }))
}

/// One `failed to offload flow` error logged by ovs-vswitchd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffloadError {
    /// The log line's own timestamp (`2020-03-19T11:42:17.028Z`) when it has one.
    pub timestamp: Option<String>,
    /// The OVS module that logged it, e.g. `dpif_netlink(handler223)`.
    pub module: Option<String>,
    /// The error text, e.g. `Operation not supported`.
    pub reason: String,
    /// The port the flow was for, e.g. `bond0`.
    pub port: String,
}

/// Parse an OVS log line such as
/// `2020-03-19T11:42:17.028Z|00001|dpif_netlink(handler223)|ERR|failed to offload flow: Operation not supported: bond0`
/// (file log format), or its syslog form (`ovs|00001|dpif_netlink(handler1)|ERR|failed ...`,
/// possibly after a syslog prefix).
pub fn parse_ovs_offload_error(line: &str) -> Option<OffloadError> {
    const MARK: &str = "failed to offload flow: ";
    let pos = line.find(MARK)?;
    let rest = line[pos + MARK.len()..].trim_end();
    let (reason, port) = rest.rsplit_once(": ")?;
    if port.is_empty() || port.contains(' ') {
        return None;
    }
    let head: Vec<&str> = line[..pos].split('|').collect();
    // file format: ts|seq|module|level|; syslog format: [prefix ]ovs|seq|module|level|
    let (timestamp, module) = if head.len() >= 5 {
        let n = head.len();
        let first = head[n - 5].trim();
        let ts = (first.len() >= 19 && first.as_bytes()[0].is_ascii_digit() && first.contains('T'))
            .then(|| first.to_string());
        (ts, Some(head[n - 3].to_string()))
    } else {
        (None, None)
    };
    Some(OffloadError {
        timestamp,
        module,
        reason: reason.to_string(),
        port: port.to_string(),
    })
}

/// Offload errors in the last `max_tail_bytes` of an ovs-vswitchd log file (Kolla:
/// `/var/log/kolla/openvswitch/ovs-vswitchd.log`; Debian: `/var/log/openvswitch/ovs-vswitchd.log`).
/// Only the tail is read, so a huge log costs no more than `max_tail_bytes`.
pub fn read_ovs_offload_errors(
    path: impl AsRef<std::path::Path>,
    max_tail_bytes: u64,
) -> io::Result<Vec<OffloadError>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max_tail_bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut data = Vec::new();
    f.take(max_tail_bytes).read_to_end(&mut data)?;
    let text = String::from_utf8_lossy(&data);
    let mut lines = text.lines();
    if start > 0 {
        lines.next(); // most likely a partial line
    }
    Ok(lines.filter_map(parse_ovs_offload_error).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        assert!(is_pci_addr("0000:37:00.0"));
        assert!(is_pci_addr("0000:af:00.1"));
        assert!(!is_pci_addr("0000:37:00.8"));
        assert!(!is_pci_addr("0000:37:0x.0"));
        assert!(!is_pci_addr("0000:37:00"));
    }

    #[test]
    fn dmesg_prefix_scales_fraction() {
        assert_eq!(
            split_dmesg("[   44.064025] x"),
            Some((Some(44_064_025), "x"))
        );
        assert_eq!(split_dmesg("[   44.06] x"), Some((Some(44_060_000), "x")));
    }

    #[test]
    fn kmsg_unescape() {
        assert_eq!(unescape_kmsg("a\\x09port 1:1"), "a\tport 1:1");
        assert_eq!(unescape_kmsg("plain"), "plain");
        assert_eq!(unescape_kmsg("odd \\xZZ"), "odd \\xZZ");
    }

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

    #[test]
    fn offload_error_line() {
        let e = parse_ovs_offload_error(
            "2020-03-19T11:42:17.028Z|00001|dpif_netlink(handler223)|ERR|failed to offload flow: Operation not supported: bond0",
        )
        .unwrap();
        assert_eq!(e.timestamp.as_deref(), Some("2020-03-19T11:42:17.028Z"));
        assert_eq!(e.module.as_deref(), Some("dpif_netlink(handler223)"));
        assert_eq!(e.reason, "Operation not supported");
        assert_eq!(e.port, "bond0");
        assert_eq!(parse_ovs_offload_error("failed to offload"), None);
    }
}
