//! systemd-networkd (`org.freedesktop.network1`): `Manager.ReconfigureLink(i ifindex)` makes
//! networkd re-match the link against its .network files and configure it (bond port included).

use super::{Bus, BusError, Outcome, NETWORKD_NAME};

pub(super) async fn reconfigure(bus: &Bus, ifindex: i32) -> Result<Outcome, BusError> {
    if !bus.has_owner(NETWORKD_NAME).await? {
        return Ok(Outcome::Skipped("systemd-networkd is not running".into()));
    }
    let manager = zbus_systemd::network1::ManagerProxy::new(bus.connection())
        .await
        .map_err(BusError::call("network1 Manager proxy"))?;
    manager
        .reconfigure_link(ifindex)
        .await
        .map_err(BusError::call(format!("ReconfigureLink({ifindex})")))?;
    Ok(Outcome::Reconfigured { ifindex })
}
