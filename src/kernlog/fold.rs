//! Events folded, in log order, into each device's LAG state.

use super::*;

/// Fold events (in log order) into a per-device report.
pub fn fold_events(events: Vec<LagEvent>) -> LagReport {
    let mut report = LagReport::default();
    for ev in events {
        let Some(dev) = ev.device.clone() else {
            report.unattributed.push(ev);
            continue;
        };
        let entry = report.devices.remove(&dev);
        let (prev_state, prev_event, modfail, count) = match entry {
            Some(d) => (
                Some(d.state),
                Some(d.last_event),
                d.last_modify_failure,
                d.events,
            ),
            None => (None, None, None, 0),
        };
        let mut last_modify_failure = modfail;
        let state = next_state(prev_state, prev_event.as_ref(), &ev);
        if matches!(ev.kind, LagEventKind::ModifyFailed { .. }) {
            last_modify_failure = Some(ev.clone());
        }
        let Some(state) = state else {
            // An event that implies nothing without an active LAG (e.g. a lone
            // `Operation mode is single FDB`): remember it but report no state.
            continue;
        };
        report.devices.insert(
            dev.clone(),
            DeviceLag {
                device: dev,
                state,
                last_event: ev,
                last_modify_failure,
                events: count + 1,
            },
        );
    }
    report
}

// One flat match over (event, previous state): the transition table reads best whole, so it
// stays one function though it is longer than most.
fn next_state(
    prev: Option<LagState>,
    prev_event: Option<&LagEvent>,
    ev: &LagEvent,
) -> Option<LagState> {
    let fresh = |ports: Vec<PortMap>, active_ports, shared_fdb, mode| LagState::Active {
        ports,
        active_ports,
        shared_fdb,
        mode,
        single_fdb: false,
        since: ev.at,
        remaps: 0,
    };
    match (&ev.kind, prev) {
        (LagEventKind::Failure { reason }, _) => Some(LagState::Failed {
            reason: reason.clone(),
            at: ev.at,
        }),
        (LagEventKind::ModifyFailed { .. }, prev) => prev,
        (
            LagEventKind::Map {
                change,
                ports,
                shared_fdb,
                mode,
            },
            Some(LagState::Active {
                active_ports,
                shared_fdb: sf,
                mode: md,
                single_fdb,
                since,
                remaps,
                ..
            }),
        ) if *change != MapChange::Create => Some(LagState::Active {
            ports: ports.clone(),
            active_ports,
            shared_fdb: shared_fdb.or(sf),
            mode: mode.clone().or(md),
            single_fdb,
            since,
            remaps: remaps + 1,
        }),
        // Creation, or a remap whose creation is no longer in the log: active from here on.
        (
            LagEventKind::Map {
                ports,
                shared_fdb,
                mode,
                ..
            },
            _,
        ) => Some(fresh(ports.clone(), None, *shared_fdb, mode.clone())),
        (
            LagEventKind::ActivePorts { ports },
            Some(LagState::Active {
                ports: map,
                shared_fdb,
                mode,
                single_fdb,
                since,
                remaps,
                ..
            }),
        ) => Some(LagState::Active {
            ports: map,
            active_ports: Some(ports.clone()),
            shared_fdb,
            mode,
            single_fdb,
            since,
            remaps: remaps + 1,
        }),
        (LagEventKind::ActivePorts { ports }, _) => {
            Some(fresh(Vec::new(), Some(ports.clone()), None, None))
        }
        (LagEventKind::SharedFdb { shared_fdb, mode }, prev) => {
            // Newer kernels print this on creation only, right after the map: that map (if it
            // was the previous event) started this LAG, and earlier remaps belong to an older one.
            let map_before = prev_event.filter(|e| {
                matches!(
                    e.kind,
                    LagEventKind::Map { .. } | LagEventKind::ActivePorts { .. }
                )
            });
            match (prev, map_before) {
                (
                    Some(LagState::Active {
                        ports,
                        active_ports,
                        ..
                    }),
                    Some(map_ev),
                ) => Some(LagState::Active {
                    ports,
                    active_ports,
                    shared_fdb: Some(*shared_fdb),
                    mode: mode.clone(),
                    single_fdb: false,
                    since: map_ev.at,
                    remaps: 0,
                }),
                // No map logged just before (log begins here, or map lines were filtered out).
                _ => Some(fresh(Vec::new(), None, Some(*shared_fdb), mode.clone())),
            }
        }
        (
            LagEventKind::SingleFdb,
            Some(LagState::Active {
                ports,
                active_ports,
                shared_fdb,
                mode,
                since,
                remaps,
                ..
            }),
        ) => Some(LagState::Active {
            ports,
            active_ports,
            shared_fdb: Some(shared_fdb.unwrap_or(true)),
            mode,
            single_fdb: true,
            since,
            remaps,
        }),
        (LagEventKind::SingleFdb, prev) => prev,
    }
}
