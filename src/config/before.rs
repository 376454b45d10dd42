//! `before`: refuse units that would close an ordering cycle with the late stage.
//!
//! The generator writes `Before=<unit>` into `vflag-rebind@<pf>.service`, which is itself
//! `After=network-online.target vflag@<pf>.service` and has systemd's default dependencies
//! (after basic.target, sysinit.target, sockets/paths/timers.target, its slices, local mounts).
//! `Before=` one of those units, or of a unit ordered before network-online.target, is a cycle:
//! systemd breaks it by dropping a job at random, possibly the network's or vflag's.

use crate::generator::glob_match;

/// Units the late stage starts after (directly, through network-online.target or through its
/// default dependencies). A `before` entry, or a glob, that matches one of them is refused.
const LATE_STAGE_AFTER: &[&str] = &[
    "network-online.target",
    "network.target",
    "network-pre.target",
    "basic.target",
    "sysinit.target",
    "local-fs.target",
    "local-fs-pre.target",
    "swap.target",
    "cryptsetup.target",
    "paths.target",
    "sockets.target",
    "timers.target",
    "slices.target",
    "NetworkManager.service",
    "NetworkManager-wait-online.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "systemd-networkd-wait-online@eth0.service",
    "systemd-resolved.service",
    "network.service",
    "networking.service",
    "ifup@eth0.service",
    "wpa_supplicant.service",
    "ovsdb-server.service",
    "ovs-vswitchd.service",
    "openvswitch.service",
    "openvswitch-switch.service",
    "dbus.service",
    "dbus-broker.service",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-journald.service",
    "systemd-modules-load.service",
    "systemd-sysctl.service",
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-remount-fs.service",
    "vflag@ens3f0.service",
    "vflag-rebind@ens3f0.service",
    "vflag-hotplug@ens3f0.service",
];

/// Families of such units: a literal entry matching one is refused too.
const LATE_STAGE_AFTER_FAMILIES: &[&str] = &[
    "vflag*",
    "systemd-networkd-wait-online@*.service",
    "ifup@*.service",
];

/// Unit types systemd's default dependencies order before basic.target or local-fs.target.
const EARLY_TYPES: &[&str] = &["socket", "path", "timer", "mount", "slice"];

/// Why `unit` (already a valid unit name or glob) would close a cycle, if it would.
pub(super) fn cycle(unit: &str) -> Option<String> {
    let suffix = unit.rsplit_once('.').map_or("", |(_, s)| s);
    if EARLY_TYPES.contains(&suffix) {
        return Some(format!(
            "{unit}: systemd orders .{suffix} units before basic.target or local-fs.target, which \
             the late stage starts after"
        ));
    }
    let hit = LATE_STAGE_AFTER
        .iter()
        .find(|name| glob_match(unit, name))
        .map(|name| name.to_string())
        .or_else(|| {
            LATE_STAGE_AFTER_FAMILIES
                .iter()
                .find(|family| glob_match(family, unit))
                .map(|family| family.to_string())
        })?;
    let what = if hit == unit {
        unit.to_string()
    } else {
        format!("{unit} matches {hit}, which")
    };
    Some(format!(
        "{what} comes before the late stage (that starts after network-online.target and early boot)"
    ))
}

#[cfg(test)]
mod tests {
    use super::cycle;

    #[test]
    fn units_ordered_after_the_network_are_accepted() {
        for ok in [
            "docker.service",
            "kolla-*-container.service",
            "podman.service",
            "multi-user.target",
            "libvirtd.service",
            "nova-compute.service",
        ] {
            assert_eq!(cycle(ok), None, "{ok}");
        }
    }

    #[test]
    fn units_the_late_stage_waits_for_are_refused() {
        for bad in [
            "network-online.target",
            "network.target",
            "sysinit.target",
            "basic.target",
            "NetworkManager.service",
            "systemd-networkd-wait-online@bond0.service",
            "vflag@ens3f0.service",
            "vflag-rebind@x.service",
            "vflagx.target",
            "*.service",
            "*.target",
            "Network*.service",
            "network*.target",
            "vf*.service",
            "*-wait-online.service",
            "docker.socket",
            "-.mount",
            "system.slice",
        ] {
            let why = cycle(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(why.starts_with(bad), "{why}");
        }
        let why = cycle("*.target").unwrap();
        assert!(why.contains("matches network-online.target"), "{why}");
    }
}
