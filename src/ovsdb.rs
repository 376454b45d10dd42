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

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

mod db;
mod flows;
mod query;
mod rpc;
mod unixctl;

pub use db::{OpenVswitch, OvsdbClient};
pub use flows::{count_flows_by_in_port, parse_dump_flows, DpFlow};
pub use query::{ovs_status, OvsStatus};
pub use unixctl::Unixctl;

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
}
