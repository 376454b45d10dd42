//! `vflag ovs-offload enable`: the one write to Open vSwitch (`other_config:hw-offload=true`),
//! kept apart from `status`, which only reads.

use crate::config::Loaded;
use crate::ovsdb::{self, OvsError, OvsdbClient};
use crate::paths::Root;
use std::time::{Duration, Instant};

/// `vflag ovs-offload enable`: set `other_config:hw-offload=true` through OVSDB at the
/// configured database socket. `Ok(true)` when it changed (see [`message`]).
pub fn enable(root: &Root, loaded: &Loaded) -> Result<bool, OvsError> {
    let path = root.path(&loaded.ovs.db_socket);
    let mut c = OvsdbClient::connect(&path, ovsdb::DEFAULT_TIMEOUT)?;
    let changed = c.enable_hw_offload()?;
    tracing::info!(db = %path.display(), changed, "other_config:hw-offload=true");
    Ok(changed)
}

/// [`enable`], tried again while Open vSwitch is not there yet or not ready (no
/// socket, connection refused, no answer, database not initialised) until `wait` has passed:
/// the socket can appear before ovsdb-server answers or before its `Open_vSwitch` row exists.
pub fn enable_wait(root: &Root, loaded: &Loaded, wait: Duration) -> Result<bool, OvsError> {
    let end = Instant::now() + wait;
    let mut said = false;
    loop {
        match enable(root, loaded) {
            Err(e) if ovs_not_ready(&e) && Instant::now() < end => {
                if !said {
                    tracing::info!("waiting up to {wait:?} for Open vSwitch: {e}");
                    said = true;
                }
                let left = end.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(500)));
            }
            r => return r,
        }
    }
}

/// States that end by themselves while Open vSwitch starts.
fn ovs_not_ready(e: &OvsError) -> bool {
    e.is_absent() || matches!(e, OvsError::NoRow(_) | OvsError::Timeout(..))
}

/// What to tell the operator after [`enable`].
pub fn message(changed: bool) -> String {
    if changed {
        "hw-offload set (other_config:hw-offload=true); restart ovs-vswitchd for it to take effect (Kolla: docker restart openvswitch_vswitchd; elsewhere: systemctl restart openvswitch-switch). vflag does not restart it (that interrupts the host's Open vSwitch traffic) and cannot tell whether the running ovs-vswitchd has applied it.".into()
    } else {
        "other_config:hw-offload is already true; nothing changed. If ovs-vswitchd was started before it was set, restart it (Kolla: docker restart openvswitch_vswitchd).".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn enable_message_says_restart() {
        assert!(message(true).contains("restart ovs-vswitchd"));
        assert!(message(false).contains("nothing changed"));
    }
}
