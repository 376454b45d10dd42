//! The early stage as its unit runs it (`vflag setup <pf>`): the hold protocol around
//! [`stages::setup`]. The PF must exist (else nothing, the network stack included, is asked) →
//! hold it from the network stack (udev marker + D-Bus, see [`hotplug::stage_start`]) → set it
//! up → release it, on success and on failure alike: a PF left held is a bond that never comes
//! up.

use crate::config::Lag;
use crate::hotplug;
use crate::names::IfName;
use crate::paths::Root;
use crate::stages::{self, Report, StageError};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EarlyError {
    /// The PF's net device is not there; nothing was asked or changed.
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Stage(#[from] StageError),
}

/// The early stage for `pf`, held from the network stack while it runs.
pub fn setup(root: &Root, lag: &Lag, pf: &IfName) -> Result<Report, EarlyError> {
    held(root, lag, pf, crate::bus::DEFAULT_TIMEOUT, || {
        stages::setup(root, lag, pf)
    })
}

/// `set_up` between hold and release (`bus_timeout` bounds each D-Bus exchange).
pub fn held(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    bus_timeout: Duration,
    set_up: impl FnOnce() -> Result<Report, StageError>,
) -> Result<Report, EarlyError> {
    if let Err(why) = hotplug::require_pf(root, pf) {
        crate::log::status(&format!("failed: {why}"));
        return Err(EarlyError::Missing(why));
    }
    let start = hotplug::stage_start(root, lag, pf, bus_timeout);
    tracing::debug!(pf = %pf, step = "hold", "{start:?}");
    crate::log::status("setting up");
    let result = set_up();
    let end = hotplug::stage_end(root, lag, pf, bus_timeout);
    log_release(pf, &end);
    let report = result.inspect_err(|e| crate::log::status(&format!("failed: {e}")))?;
    tracing::info!(pf = %pf, step = "done", "{}", report.status());
    crate::log::status(&report.status());
    Ok(report)
}

/// At boot no stack runs yet (the unit is ordered before them): nothing to hand over, and the
/// stack takes the port when it starts. Only a hand-over that was due and failed matters.
fn log_release(pf: &IfName, end: &hotplug::StageEnd) {
    match &end.release {
        Ok(crate::bus::Outcome::Skipped(why)) => {
            tracing::debug!(pf = %pf, step = "release", "no hand-over: {why}")
        }
        Ok(o) => tracing::info!(pf = %pf, step = "release", "handed to {:?}: {o:?}", end.stack),
        Err(e) => tracing::warn!(
            pf = %pf,
            step = "release",
            "could not hand {pf} to {:?} ({e}); if the stack is not running yet it takes the port when it starts",
            end.stack
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkStack;

    fn lag() -> Lag {
        let mut l = crate::config::parse_native(&[(
            "/etc/vflag/vflag.conf".into(),
            "[lag bond0]\npfs = ens3f0 ens3f1\n".into(),
        )])
        .plan
        .lags
        .remove(0);
        l.network_stack = NetworkStack::None;
        l
    }

    /// Missing PF: the set-up never runs. Present: held (marker gone) during the set-up and
    /// released (marker written) after it, whether it failed or succeeded.
    #[test]
    fn set_up_runs_between_hold_and_release_even_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let (lag, pf) = (lag(), IfName::new("ens3f0").unwrap());
        let t = Duration::from_millis(200);
        let mut ran = false;
        let e = held(&root, &lag, &pf, t, || {
            ran = true;
            Ok(Report::default())
        })
        .unwrap_err();
        assert!(!ran);
        assert!(matches!(&e, EarlyError::Missing(m) if m.contains("no such network interface")));

        let net = dir.path().join("sys/class/net/ens3f0");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("ifindex"), "7\n").unwrap();
        hotplug::finish(&root, &pf, t).unwrap(); // an earlier run finished
        let e = held(&root, &lag, &pf, t, || {
            assert!(!hotplug::finished(&root, &pf, Some(7)), "not held");
            Err(StageError::Refused {
                pf: "ens3f0".into(),
                reason: "test".into(),
            })
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "ens3f0: test (nothing was changed)");
        assert!(hotplug::finished(&root, &pf, Some(7)), "not released");

        let r = held(&root, &lag, &pf, t, || {
            Ok(Report {
                pf: "ens3f0".into(),
                ..Report::default()
            })
        })
        .unwrap();
        assert_eq!(r.pf, "ens3f0");
        assert!(hotplug::finished(&root, &pf, Some(7)));
    }
}
