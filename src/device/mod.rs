//! Device model: the only code that writes to /sys or speaks netlink.
//!
//! - [`sysfs`]: a PF's device directory, SR-IOV files, VFs (`virtfn*`), drivers, bond membership.
//! - [`nl`]: a synchronous netlink connection (request/ack/dump, kernel errors with extack text).
//! - [`rtnl`]: link state by ifindex (flags, master, `phys_port_name`, `phys_switch_id`).
//! - [`genl`]: generic netlink family resolution.
//! - [`devlink`]: eswitch mode, port dump, params.
//! - [`ethtool`]: features (`hw-tc-offload`) and channels.
//! - [`portname`]: what a `phys_port_name` says (physical port, VF/SF representor).
//! - [`ports`]: hw-tc-offload and channels of many ports, one dump per setting.
//! - [`repr`]: which netdevs are the representors of a PF's VFs.
//! - [`net`]: the netlink operations the stages use, as a trait (real: [`net::Kernel`]).
//!
//! Interface names are validated [`crate::names::IfName`]s; every sysfs path goes through
//! [`crate::paths::Root`]. Netdevs that udev may rename (representors, VF netdevs) are addressed
//! by ifindex, never by a remembered name.

pub mod devlink;
pub mod ethtool;
#[cfg(test)]
pub(crate) mod fake;
pub mod genl;
pub mod net;
pub mod nl;
pub mod portname;
pub mod ports;
pub mod repr;
pub mod rtnl;
pub mod sysfs;

use std::path::PathBuf;

/// Every failure of the device layer; messages name the path or the netlink operation and
/// carry the kernel's extended-ack text when it sent one. The I/O error is part of the message
/// and deliberately not exposed as `source()`, so that a `{:#}` error chain does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The kernel answered a netlink request with an error.
    #[error("{op}: {}{}", std::io::Error::from_raw_os_error(*errno), extack.as_deref().map(|m| format!(" (kernel: {m})")).unwrap_or_default())]
    Kernel {
        op: String,
        errno: i32,
        extack: Option<String>,
    },
    /// A socket-level failure (open, send, receive, timeout).
    #[error("netlink {op}: {cause}")]
    Socket { op: String, cause: std::io::Error },
    #[error("malformed netlink reply: {0}")]
    Decode(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("timed out after {secs:.1} s waiting for {what}")]
    Timeout { what: String, secs: f64 },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }

    /// Whether the kernel answered a netlink request with one of `codes`.
    pub fn is_kernel(&self, codes: &[nix::errno::Errno]) -> bool {
        matches!(self, Error::Kernel { errno, .. } if codes.iter().any(|c| *c as i32 == *errno))
    }

    /// The errno of a kernel (netlink) or I/O error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io { cause, .. } | Error::Socket { cause, .. } => cause.raw_os_error(),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
