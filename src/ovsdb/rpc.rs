//! JSON-RPC 1.0 over a unix stream socket, every call bounded by a deadline: the transport
//! both [`super::OvsdbClient`] and [`super::Unixctl`] use.

use super::OvsError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most bytes read from one connection (a huge flow dump still fits; a runaway peer does not).
const MAX_INPUT: u64 = 256 << 20;
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
pub(super) struct JsonRpc {
    pub(super) path: PathBuf,
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
    pub(super) fn connect(path: &Path, timeout: Duration) -> Result<Self, OvsError> {
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
    pub(super) fn call(&mut self, method: &str, params: Value) -> Result<Value, OvsError> {
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
