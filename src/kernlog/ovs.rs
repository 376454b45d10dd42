//! ovs-vswitchd's `failed to offload flow` log lines.

use serde::Serialize;
use std::io::{self, Read};

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
