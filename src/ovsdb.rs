//! OVSDB (RFC 7047) client over a unix socket, and ovs-vswitchd unixctl.
//!
//! Both speak JSON-RPC 1.0 over a unix stream socket: one JSON object per message, no framing
//! beyond the JSON text itself. Everything here is synchronous and bounded: connecting and every
//! call finish within the caller's timeout (a status check must never hang), and a missing
//! socket is reported as [`OvsError::Absent`], not as a crash.
//!
//! * [`OvsdbClient`]: `ovsdb-server`'s database socket (Kolla shares `/run/openvswitch/db.sock`
//!   with the host). Reads the `Open_vSwitch` row ([`OpenVswitch`]) and sets
//!   `other_config:hw-offload` with an atomic `mutate` that keeps every other key.
//! * [`Unixctl`]: a daemon's control socket (what `ovs-appctl` talks to): the method is the
//!   command name, `params` are its arguments as strings, and the reply's `result` or `error` is
//!   a string. ovs-vswitchd's socket is `<rundir>/ovs-vswitchd.<pid>.ctl`, pid from
//!   `<rundir>/ovs-vswitchd.pid`.
//! * [`parse_dump_flows`] / [`count_flows_by_in_port`]: `dpctl/dump-flows type=offloaded`
//!   output.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::paths::Root;

/// The database socket that Debian's and Kolla's Open vSwitch use.
pub const DEFAULT_DB_SOCK: &str = "/run/openvswitch/db.sock";
/// Where ovs-vswitchd keeps its pidfile and control socket.
pub const DEFAULT_RUNDIR: &str = "/run/openvswitch";
/// A default bound for connect + one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The database name in ovsdb-server.
pub const DB_NAME: &str = "Open_vSwitch";
/// Oldest Open vSwitch release with usable VF-LAG offload (the seed's requirement).
pub const MIN_OVS_VERSION: OvsVersion = OvsVersion {
    major: 2,
    minor: 12,
    patch: 0,
};
/// Most bytes read from one connection (a huge flow dump still fits; a runaway peer does not).
const MAX_INPUT: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// No socket file: Open vSwitch is not installed/running here (or the path is wrong).
    #[error("Open vSwitch absent: {} does not exist", .0.display())]
    Absent(PathBuf),
    /// The socket file exists but nobody listens (stale socket after a crash or container stop).
    #[error("Open vSwitch not running: {} refused the connection", .0.display())]
    NotRunning(PathBuf),
    #[error("{}: no answer within {:?}", .0.display(), .1)]
    Timeout(PathBuf, Duration),
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, #[source] io::Error),
    #[error("{}: protocol error: {}", .0.display(), .1)]
    Protocol(PathBuf, String),
    /// The peer answered with an error (unixctl: the command's error text; OVSDB: an RPC or
    /// operation error with its details).
    #[error("{}: {method}: {error}", path.display())]
    Rpc {
        path: PathBuf,
        method: String,
        error: String,
    },
    /// The `Open_vSwitch` table has no row (database created but never initialised).
    #[error("{}: the Open_vSwitch table has no row (database not initialised)", .0.display())]
    NoRow(PathBuf),
}

impl OvsError {
    /// True when Open vSwitch is simply not there (no socket, or nobody listening): a reported
    /// state, not a malfunction of vflag.
    pub fn is_absent(&self) -> bool {
        matches!(self, OvsError::Absent(_) | OvsError::NotRunning(_))
    }
}

/// A `Read` over the socket that never reads past a shared deadline.
struct DeadlineReader {
    stream: UnixStream,
    deadline: Arc<Mutex<Instant>>,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

type JsonReader =
    serde_json::Deserializer<serde_json::de::IoRead<BufReader<io::Take<DeadlineReader>>>>;

/// JSON-RPC 1.0 over a unix stream socket, every call bounded by `timeout`.
struct JsonRpc {
    path: PathBuf,
    writer: UnixStream,
    reader: JsonReader,
    deadline: Arc<Mutex<Instant>>,
    timeout: Duration,
    next_id: u64,
    /// Set after a timeout or I/O/protocol error: the stream may be mid-message, so later calls
    /// fail at once instead of misreading it.
    broken: Option<String>,
}

/// Connect to a unix stream socket within `timeout` (a non-blocking connect: a listener with a
/// full backlog makes it retry until the deadline instead of blocking).
fn connect_unix(path: &Path, timeout: Duration) -> Result<UnixStream, OvsError> {
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(OvsError::Absent(path.to_path_buf()))
        }
        Err(e) => return Err(OvsError::Io(path.to_path_buf(), e)),
        Ok(_) => {}
    }
    let io_err = |e: Errno| OvsError::Io(path.to_path_buf(), io::Error::from(e));
    let addr = UnixAddr::new(path).map_err(io_err)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io_err)?;
    let deadline = Instant::now() + timeout;
    loop {
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => continue,
            // Unix sockets report a full backlog as EAGAIN; EINPROGRESS is not expected but is
            // handled the same way.
            Err(Errno::EAGAIN | Errno::EINPROGRESS | Errno::EALREADY) => {
                if Instant::now() >= deadline {
                    return Err(OvsError::Timeout(path.to_path_buf(), timeout));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(Errno::EISCONN) => break,
            Err(Errno::ECONNREFUSED) => return Err(OvsError::NotRunning(path.to_path_buf())),
            Err(Errno::ENOENT) => return Err(OvsError::Absent(path.to_path_buf())),
            Err(e) => return Err(io_err(e)),
        }
    }
    let stream = UnixStream::from(fd);
    stream
        .set_nonblocking(false)
        .map_err(|e| OvsError::Io(path.to_path_buf(), e))?;
    Ok(stream)
}

impl JsonRpc {
    fn connect(path: &Path, timeout: Duration) -> Result<Self, OvsError> {
        let stream = connect_unix(path, timeout)?;
        let io = |e| OvsError::Io(path.to_path_buf(), e);
        let writer = stream.try_clone().map_err(io)?;
        let deadline = Arc::new(Mutex::new(Instant::now() + timeout));
        let reader = DeadlineReader {
            stream,
            deadline: deadline.clone(),
        };
        Ok(JsonRpc {
            path: path.to_path_buf(),
            writer,
            reader: serde_json::Deserializer::from_reader(BufReader::new(reader.take(MAX_INPUT))),
            deadline,
            timeout,
            next_id: 0,
            broken: None,
        })
    }

    fn set_deadline(&self) -> Instant {
        let d = Instant::now() + self.timeout;
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = d;
        d
    }

    fn send(&mut self, msg: &Value, deadline: Instant) -> Result<(), OvsError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(OvsError::Timeout(self.path.clone(), self.timeout));
        }
        let bytes = serde_json::to_vec(msg)
            .map_err(|e| OvsError::Protocol(self.path.clone(), e.to_string()))?;
        self.writer
            .set_write_timeout(Some(left))
            .and_then(|()| self.writer.write_all(&bytes))
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    OvsError::Timeout(self.path.clone(), self.timeout)
                }
                _ => OvsError::Io(self.path.clone(), e),
            })
    }

    fn recv(&mut self) -> Result<Value, OvsError> {
        Value::deserialize(&mut self.reader).map_err(|e| {
            match e.io_error_kind() {
                Some(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return OvsError::Timeout(self.path.clone(), self.timeout)
                }
                Some(kind) => return OvsError::Io(self.path.clone(), io::Error::new(kind, e)),
                None => {}
            }
            if e.is_eof() {
                OvsError::Protocol(self.path.clone(), "connection closed by peer".into())
            } else {
                OvsError::Protocol(self.path.clone(), e.to_string())
            }
        })
    }

    /// Send a request and wait (bounded) for its reply. Server requests in between are
    /// answered (`echo`) or ignored (notifications). Returns the reply's `result` or
    /// `Err(Rpc)` with its `error`.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, OvsError> {
        if let Some(why) = &self.broken {
            return Err(OvsError::Protocol(
                self.path.clone(),
                format!("connection unusable after an earlier error ({why}); reconnect"),
            ));
        }
        let r = self.exchange(method, params);
        if let Err(e) = &r {
            if !matches!(e, OvsError::Rpc { .. }) {
                self.broken = Some(e.to_string());
            }
        }
        r
    }

    fn exchange(&mut self, method: &str, params: Value) -> Result<Value, OvsError> {
        let deadline = self.set_deadline();
        self.next_id += 1;
        let id = self.next_id;
        self.send(
            &json!({"method": method, "params": params, "id": id}),
            deadline,
        )?;
        loop {
            let msg = self.recv()?;
            let Some(obj) = msg.as_object() else {
                return Err(OvsError::Protocol(
                    self.path.clone(),
                    format!("expected a JSON object, got {msg}"),
                ));
            };
            if let Some(m) = obj.get("method").and_then(Value::as_str) {
                // A request or notification from the server.
                let rid = obj.get("id").cloned().unwrap_or(Value::Null);
                if m == "echo" && !rid.is_null() {
                    let reply = json!({"result": obj.get("params").cloned().unwrap_or(json!([])),
                                       "error": null, "id": rid});
                    self.send(&reply, deadline)?;
                }
                continue;
            }
            if obj.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // a late reply to an earlier, timed-out call
            }
            match obj.get("error") {
                Some(Value::Null) | None => {
                    return Ok(obj.get("result").cloned().unwrap_or(Value::Null))
                }
                Some(err) => {
                    return Err(OvsError::Rpc {
                        path: self.path.clone(),
                        method: method.to_string(),
                        error: match err {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    })
                }
            }
        }
    }
}

/// The `Open_vSwitch` table's single row, as far as vflag cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenVswitch {
    pub uuid: String,
    /// Set by ovs-vswitchd (or its start script); `None` on a database that no daemon has
    /// touched yet.
    pub ovs_version: Option<String>,
    pub db_version: Option<String>,
    pub other_config: BTreeMap<String, String>,
}

impl OpenVswitch {
    /// `other_config:hw-offload` as ovs-vswitchd reads it: only the value "true" enables it.
    pub fn hw_offload(&self) -> bool {
        self.other_config
            .get("hw-offload")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The parsed `ovs_version`, if set and well-formed.
    pub fn version(&self) -> Option<OvsVersion> {
        self.ovs_version.as_deref().and_then(OvsVersion::parse)
    }
}

/// A synchronous OVSDB client (RFC 7047) over a unix socket.
pub struct OvsdbClient {
    rpc: JsonRpc,
}

/// Decode an OVSDB `<string>` atom or a 0/1-element `["set", [...]]` (optional column).
fn opt_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) if a.len() == 2 && a[0] == "set" => match a[1].as_array()?.as_slice() {
            [Value::String(s)] => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Decode `["map", [[k, v], ...]]` with string keys and values.
fn string_map(v: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let pairs = match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(pairs)]) if tag == "map" => pairs,
        _ => return Err(format!("expected [\"map\", [...]], got {v}")),
    };
    for p in pairs {
        match p.as_array().map(Vec::as_slice) {
            Some([Value::String(k), Value::String(val)]) => {
                out.insert(k.clone(), val.clone());
            }
            _ => return Err(format!("bad map pair {p}")),
        }
    }
    Ok(out)
}

impl OvsdbClient {
    /// Connect to `path` (e.g. [`DEFAULT_DB_SOCK`]); `timeout` bounds the connect and, later,
    /// each call.
    pub fn connect(path: impl AsRef<Path>, timeout: Duration) -> Result<Self, OvsError> {
        Ok(OvsdbClient {
            rpc: JsonRpc::connect(path.as_ref(), timeout)?,
        })
    }

    /// Connect to [`DEFAULT_DB_SOCK`] under `root`.
    pub fn connect_default(root: &Root, timeout: Duration) -> Result<Self, OvsError> {
        Self::connect(root.path(DEFAULT_DB_SOCK), timeout)
    }

    pub fn path(&self) -> &Path {
        &self.rpc.path
    }

    /// A raw JSON-RPC call (`list_dbs`, `get_schema`, `transact`, ...).
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, OvsError> {
        self.rpc.call(method, params)
    }

    /// `list_dbs`.
    pub fn list_dbs(&mut self) -> Result<Vec<String>, OvsError> {
        let v = self.call("list_dbs", json!([]))?;
        serde_json::from_value(v)
            .map_err(|e| OvsError::Protocol(self.rpc.path.clone(), e.to_string()))
    }

    /// The schema version of the `Open_vSwitch` database (what `ovs-vsctl --version` prints as
    /// "DB Schema"), from `get_schema`.
    pub fn schema_version(&mut self) -> Result<String, OvsError> {
        let v = self.call("get_schema", json!([DB_NAME]))?;
        v.get("version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                OvsError::Protocol(self.rpc.path.clone(), "schema without version".into())
            })
    }

    /// `transact` on the Open_vSwitch database; per-operation errors become `Err(Rpc)`.
    pub fn transact(&mut self, ops: Vec<Value>) -> Result<Vec<Value>, OvsError> {
        let mut params = vec![json!(DB_NAME)];
        params.extend(ops);
        let v = self.call("transact", Value::Array(params))?;
        let Value::Array(results) = v else {
            return Err(OvsError::Protocol(
                self.rpc.path.clone(),
                format!("transact result is not an array: {v}"),
            ));
        };
        for r in &results {
            if let Some(err) = r.get("error").filter(|e| !e.is_null()) {
                let details = r.get("details").and_then(Value::as_str).unwrap_or("");
                return Err(OvsError::Rpc {
                    path: self.rpc.path.clone(),
                    method: "transact".into(),
                    error: format!(
                        "{}{}{}",
                        err.as_str().unwrap_or(&err.to_string()),
                        if details.is_empty() { "" } else { ": " },
                        details
                    ),
                });
            }
        }
        Ok(results)
    }

    /// Read the `Open_vSwitch` row.
    pub fn open_vswitch(&mut self) -> Result<OpenVswitch, OvsError> {
        let res = self.transact(vec![json!({
            "op": "select",
            "table": "Open_vSwitch",
            "where": [],
            "columns": ["_uuid", "ovs_version", "db_version", "other_config"],
        })])?;
        let path = self.rpc.path.clone();
        let rows = res
            .first()
            .and_then(|r| r.get("rows"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                OvsError::Protocol(path.clone(), "select returned no rows array".into())
            })?;
        let row = rows.first().ok_or_else(|| OvsError::NoRow(path.clone()))?;
        let uuid = match row
            .get("_uuid")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([tag, Value::String(u)]) if tag == "uuid" => u.clone(),
            _ => {
                return Err(OvsError::Protocol(
                    path,
                    format!("row without _uuid: {row}"),
                ))
            }
        };
        Ok(OpenVswitch {
            uuid,
            ovs_version: opt_string(row.get("ovs_version")),
            db_version: opt_string(row.get("db_version")),
            other_config: string_map(row.get("other_config"))
                .map_err(|e| OvsError::Protocol(path.clone(), e))?,
        })
    }

    /// Set `other_config:<key>=<value>` in one atomic transaction that leaves every other key
    /// alone (`mutate`: delete the key, then insert the new pair; an `insert` alone would not
    /// replace an existing value).
    pub fn set_other_config(&mut self, key: &str, value: &str) -> Result<(), OvsError> {
        let res = self.transact(vec![
            json!({
                "op": "mutate",
                "table": "Open_vSwitch",
                "where": [],
                "mutations": [
                    ["other_config", "delete", ["set", [key]]],
                    ["other_config", "insert", ["map", [[key, value]]]],
                ],
            }),
            json!({"op": "comment", "comment": format!("vflag: set other_config:{key}={value}")}),
        ])?;
        match res
            .first()
            .and_then(|r| r.get("count"))
            .and_then(Value::as_u64)
        {
            Some(0) => Err(OvsError::NoRow(self.rpc.path.clone())),
            Some(_) => Ok(()),
            None => Err(OvsError::Protocol(
                self.rpc.path.clone(),
                format!("mutate result without count: {res:?}"),
            )),
        }
    }

    /// Make sure `other_config:hw-offload` is "true". Returns whether it changed. Open vSwitch
    /// documents that enabling takes effect in a running ovs-vswitchd, while turning it off
    /// again needs a daemon restart (older releases needed a restart for either).
    pub fn enable_hw_offload(&mut self) -> Result<bool, OvsError> {
        if self.open_vswitch()?.hw_offload() {
            return Ok(false);
        }
        self.set_other_config("hw-offload", "true")?;
        Ok(true)
    }
}

/// An Open vSwitch release number. Ordering is numeric (`2.9.0 < 2.12.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct OvsVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl OvsVersion {
    /// Parse the first `X.Y[.Z]` in `s`: "2.12.0", "3.1.0-2+deb12u1",
    /// "ovs-vswitchd (Open vSwitch) 3.1.0", "2.17".
    pub fn parse(s: &str) -> Option<Self> {
        s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .find_map(|tok| {
                let mut parts = tok.split('.').filter(|p| !p.is_empty());
                let major = parts.next()?.parse().ok()?;
                let minor = parts.next()?.parse().ok()?;
                let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                Some(OvsVersion {
                    major,
                    minor,
                    patch,
                })
            })
    }

    /// At least [`MIN_OVS_VERSION`] (2.12).
    pub fn is_supported(&self) -> bool {
        *self >= MIN_OVS_VERSION
    }
}

impl std::fmt::Display for OvsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A client for an OVS daemon's unixctl socket (what `ovs-appctl` uses).
pub struct Unixctl {
    rpc: JsonRpc,
}

impl std::fmt::Debug for Unixctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unixctl")
            .field("path", &self.rpc.path)
            .finish()
    }
}

impl std::fmt::Debug for OvsdbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OvsdbClient")
            .field("path", &self.rpc.path)
            .finish()
    }
}

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

impl Unixctl {
    /// Connect to a control socket path.
    pub fn connect(path: impl AsRef<Path>, timeout: Duration) -> Result<Self, OvsError> {
        Ok(Unixctl {
            rpc: JsonRpc::connect(path.as_ref(), timeout)?,
        })
    }

    /// ovs-vswitchd's control socket under `root`: `<rundir>/ovs-vswitchd.<pid>.ctl` with the pid
    /// from `<rundir>/ovs-vswitchd.pid`; without a pidfile, the only `ovs-vswitchd.*.ctl` in
    /// `rundir`. `Err(Absent)` when neither exists.
    pub fn vswitchd_socket(root: &Root, rundir: impl AsRef<Path>) -> Result<PathBuf, OvsError> {
        let dir = root.path(rundir);
        let pidfile = dir.join("ovs-vswitchd.pid");
        match std::fs::read_to_string(&pidfile) {
            Ok(s) => {
                let pid: u32 = s.trim().parse().map_err(|_| {
                    OvsError::Protocol(pidfile.clone(), format!("not a pid: {:?}", s.trim()))
                })?;
                return Ok(dir.join(format!("ovs-vswitchd.{pid}.ctl")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(OvsError::Io(pidfile, e)),
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ovs-vswitchd.") && n.ends_with(".ctl"))
            })
            .collect();
        found.sort();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(OvsError::Absent(pidfile)),
            _ => Err(OvsError::Protocol(
                dir,
                format!(
                    "no pidfile and {} ovs-vswitchd control sockets",
                    found.len()
                ),
            )),
        }
    }

    /// Connect to ovs-vswitchd (see [`Unixctl::vswitchd_socket`]).
    pub fn connect_vswitchd(
        root: &Root,
        rundir: impl AsRef<Path>,
        timeout: Duration,
    ) -> Result<Self, OvsError> {
        Self::connect(Self::vswitchd_socket(root, rundir)?, timeout)
    }

    pub fn path(&self) -> &Path {
        &self.rpc.path
    }

    /// Run a command (`version`, `list-commands`, `dpctl/dump-flows`, ...) and return its text.
    /// A command's own error text comes back as `Err(OvsError::Rpc)`.
    pub fn command(&mut self, command: &str, args: &[&str]) -> Result<String, OvsError> {
        let v = self.rpc.call(command, json!(args))?;
        match v {
            Value::String(s) => Ok(s),
            Value::Null => Ok(String::new()),
            other => Err(OvsError::Protocol(
                self.rpc.path.clone(),
                format!("{command}: result is not a string: {other}"),
            )),
        }
    }

    /// The daemon's `version` text, e.g. "ovs-vswitchd (Open vSwitch) 3.1.0".
    pub fn version(&mut self) -> Result<String, OvsError> {
        Ok(self.command("version", &[])?.trim().to_string())
    }

    /// Datapath flows (`dpctl/dump-flows --names [filter]`, e.g. filter `type=offloaded`), with
    /// port names; falls back to port numbers if the daemon does not know `--names`.
    pub fn dump_flows(&mut self, filter: Option<&str>) -> Result<Vec<DpFlow>, OvsError> {
        let mut args = vec!["--names"];
        args.extend(filter);
        let text = match self.command("dpctl/dump-flows", &args) {
            Err(OvsError::Rpc { error, .. }) if error.contains("--names") => {
                self.command("dpctl/dump-flows", &args[1..])?
            }
            other => other?,
        };
        Ok(parse_dump_flows(&text))
    }

    /// Offloaded datapath flows: `dpctl/dump-flows --names type=offloaded`.
    pub fn dump_offloaded_flows(&mut self) -> Result<Vec<DpFlow>, OvsError> {
        self.dump_flows(Some("type=offloaded"))
    }
}

/// Everything `vflag status` wants from Open vSwitch, gathered without ever waiting longer than
/// the timeout per step (at most four steps: database row, schema, daemon version, flow dump).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OvsStatus {
    /// The database socket asked.
    pub db_sock: PathBuf,
    /// False when neither the database nor ovs-vswitchd answered because they are not there
    /// (no socket, or a stale one): Open vSwitch is absent, a state to report.
    pub present: bool,
    /// The `Open_vSwitch` row (None when the database was absent or unreadable).
    pub row: Option<OpenVswitch>,
    /// Database schema version (`get_schema`).
    pub schema_version: Option<String>,
    /// ovs-vswitchd's own `version` answer, e.g. "ovs-vswitchd (Open vSwitch) 3.1.0".
    pub vswitchd_version: Option<String>,
    /// Best known release: `Open_vSwitch.ovs_version` if set, else the daemon's answer
    /// (ovs-vswitchd itself does not fill `ovs_version`; start scripts do).
    pub version: Option<OvsVersion>,
    /// `other_config:hw-offload` is "true" (None when the row could not be read).
    pub hw_offload: Option<bool>,
    /// `dpctl/dump-flows type=offloaded` (None when ovs-vswitchd was not reachable).
    pub offloaded_flows: Option<Vec<DpFlow>>,
    /// Problems other than absence (timeouts, protocol or RPC errors), as text.
    pub errors: Vec<String>,
}

impl OvsStatus {
    /// Version at least [`MIN_OVS_VERSION`], when known.
    pub fn version_supported(&self) -> Option<bool> {
        self.version.map(|v| v.is_supported())
    }
}

/// Gather [`OvsStatus`]: the database at `db_sock` and ovs-vswitchd under `rundir` (both
/// mapped through `root`), each call bounded by `timeout`.
pub fn ovs_status(
    root: &Root,
    db_sock: impl AsRef<Path>,
    rundir: impl AsRef<Path>,
    timeout: Duration,
) -> OvsStatus {
    let mut st = OvsStatus {
        db_sock: root.path(db_sock.as_ref()),
        ..OvsStatus::default()
    };
    let note = |st: &mut OvsStatus, e: OvsError| {
        if !e.is_absent() {
            st.present = true;
            st.errors.push(e.to_string());
        }
    };
    match OvsdbClient::connect(&st.db_sock, timeout) {
        Ok(mut c) => {
            st.present = true;
            match c.open_vswitch() {
                Ok(row) => {
                    st.hw_offload = Some(row.hw_offload());
                    st.version = row.version();
                    st.row = Some(row);
                }
                Err(e) => note(&mut st, e),
            }
            match c.schema_version() {
                Ok(v) => st.schema_version = Some(v),
                Err(e) => note(&mut st, e),
            }
        }
        Err(e) => note(&mut st, e),
    }
    match Unixctl::connect_vswitchd(root, rundir, timeout) {
        Ok(mut u) => {
            st.present = true;
            match u.version() {
                Ok(v) => {
                    if st.version.is_none() {
                        st.version = OvsVersion::parse(&v);
                    }
                    st.vswitchd_version = Some(v);
                }
                Err(e) => note(&mut st, e),
            }
            match u.dump_offloaded_flows() {
                Ok(f) => st.offloaded_flows = Some(f),
                Err(e) => note(&mut st, e),
            }
        }
        Err(e) => note(&mut st, e),
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = |s| OvsVersion::parse(s).unwrap();
        assert_eq!(
            v("2.12.0"),
            OvsVersion {
                major: 2,
                minor: 12,
                patch: 0
            }
        );
        assert_eq!(v("3.1.0-2+deb12u1").to_string(), "3.1.0");
        assert_eq!(
            v("ovs-vswitchd (Open vSwitch) 2.17.9\n").to_string(),
            "2.17.9"
        );
        assert_eq!(v("2.17").to_string(), "2.17.0");
        assert!(v("2.9.5") < v("2.12.0"), "numeric, not lexical");
        assert!(!v("2.11.99").is_supported());
        assert!(v("2.12.0").is_supported());
        assert!(v("3.0.0").is_supported());
        assert_eq!(OvsVersion::parse("unknown"), None);
        assert_eq!(OvsVersion::parse(""), None);
    }

    #[test]
    fn ovsdb_encodings() {
        assert_eq!(
            opt_string(Some(&json!("2.17.0"))).as_deref(),
            Some("2.17.0")
        );
        assert_eq!(opt_string(Some(&json!(["set", []]))), None);
        assert_eq!(
            opt_string(Some(&json!(["set", ["x"]]))).as_deref(),
            Some("x")
        );
        let m = string_map(Some(&json!(["map", [["hw-offload", "true"], ["a", "b"]]]))).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["hw-offload"], "true");
        assert!(string_map(Some(&json!(["set", []]))).is_err());
        assert!(string_map(None).unwrap().is_empty());
    }

    #[test]
    fn hw_offload_value() {
        let mut ov = OpenVswitch {
            uuid: "u".into(),
            ovs_version: None,
            db_version: None,
            other_config: BTreeMap::new(),
        };
        assert!(!ov.hw_offload());
        ov.other_config.insert("hw-offload".into(), "false".into());
        assert!(!ov.hw_offload());
        ov.other_config.insert("hw-offload".into(), "true".into());
        assert!(ov.hw_offload());
    }
}
