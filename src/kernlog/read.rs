//! Reading the kernel's own records: `/dev/kmsg` without waiting, mlx5's debugfs LAG files.

use super::*;
use crate::paths::Root;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

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
