//! A daemon's control socket (what `ovs-appctl` talks to), and the flow dumps asked over it.

use super::rpc::JsonRpc;
use super::*;
use crate::paths::Root;
use serde_json::{json, Value};
use std::path::Path;

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
