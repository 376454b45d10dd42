//! What `vflag status` asks Open vSwitch, gathered in one bounded pass.

use super::*;
use crate::paths::Root;
use std::path::Path;

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
