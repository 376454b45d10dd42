//! The systemd `.link` file udev applied to a PF, when it sets SR-IOV.

use super::nm::keyfile;
use super::*;

/// The `.link` file (and drop-ins) udev applied to the PF, as udev recorded it in its database
/// (`ID_NET_LINK_FILE`, `ID_NET_LINK_FILE_DROPINS` of `/run/udev/data/n<ifindex>`): no
/// re-implementation of `[Match]`. `SR-IOVVirtualFunctions=` sets the VF count when the device
/// appears (Fail); `[SR-IOV]` sections only set VF attributes (Warn).
pub(super) fn networkd_link(root: &Root, pf: &IfName) -> Vec<Finding> {
    let Some(ifindex) = sysfs::netdev_ifindex(root, pf.as_str()).ok().flatten() else {
        return vec![];
    };
    let Ok(db) = std::fs::read_to_string(root.path(format!("/run/udev/data/n{ifindex}"))) else {
        return vec![];
    };
    let prop = |k: &str| {
        db.lines()
            .filter_map(|l| l.strip_prefix("E:"))
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .map(str::to_string)
    };
    let mut paths: Vec<String> = prop("ID_NET_LINK_FILE").into_iter().collect();
    if let Some(d) = prop("ID_NET_LINK_FILE_DROPINS") {
        paths.extend(d.split(':').filter(|s| !s.is_empty()).map(str::to_string));
    }
    let mut out = vec![];
    for p in paths {
        let Ok(text) = std::fs::read_to_string(root.path(&p)) else {
            continue;
        };
        let kv = keyfile(&text);
        let count = kv
            .iter()
            .rev()
            .find(|(s, k, _)| s == "Link" && k == "SR-IOVVirtualFunctions")
            .map(|(_, _, v)| v.clone())
            .filter(|v| !v.is_empty());
        let section = text.lines().any(|l| l.trim() == "[SR-IOV]");
        let fix = format!("remove SR-IOVVirtualFunctions= and the [SR-IOV] sections from {p} (or hide it with a .link file of the same name in /etc/systemd/network without them), then udevadm control --reload; vflag sets the VF count (vfs= in vflag.conf)");
        if let Some(n) = count {
            out.push(
                Finding::new(
                    "owner-networkd",
                    Some(pf),
                    Outcome::Fail,
                    format!("{p} (the .link file udev applied to {pf}) has SR-IOVVirtualFunctions={n}: udev sets {pf}'s VF count whenever the device is added"),
                )
                .hint(fix),
            );
        } else if section {
            out.push(
                Finding::new(
                    "owner-networkd",
                    Some(pf),
                    Outcome::Warn,
                    format!("{p} (the .link file udev applied to {pf}) has [SR-IOV] sections: udev sets attributes of {pf}'s VFs whenever the device is added"),
                )
                .hint(fix),
            );
        }
    }
    out
}
