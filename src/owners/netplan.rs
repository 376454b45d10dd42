//! netplan SR-IOV settings for a PF and the units netplan generates from them.

use super::*;

const NETPLAN_DIRS: &[&str] = &[
    "/run/netplan",
    "/etc/netplan",
    "/usr/lib/netplan",
    "/lib/netplan",
];
const NETPLAN_UNITS: &[&str] = &[
    "/run/systemd/generator.late/netplan-sriov-apply.service",
    "/run/systemd/system/netplan-sriov-apply.service",
];
const NETPLAN_KEYS: &[&str] = &[
    "virtual-function-count",
    "embedded-switch-mode",
    "delay-virtual-functions-rebind",
];

/// SR-IOV facts of one netplan `ethernets:` entry.
#[derive(Default, Debug)]
struct NpDef {
    id: String,
    set_name: Option<String>,
    match_name: Option<String>,
    match_mac: Option<String>,
    has_match: bool,
    /// `key: value` SR-IOV settings, and `VF <id>` for definitions that link to it.
    sriov: Vec<String>,
    link: Option<String>,
}

/// The `network: ethernets:` entries of a netplan file in block style (netplan's own examples
/// and generated files; flow-style `{...}` mappings are not read).
fn netplan_defs(text: &str) -> Vec<NpDef> {
    let mut stack: Vec<(usize, String)> = vec![];
    let mut defs: Vec<NpDef> = vec![];
    for raw in text.lines() {
        let line = match raw.find(" #") {
            Some(i) => &raw[..i],
            None => raw,
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('-') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let Some((k, v)) = t.split_once(':') else {
            continue;
        };
        let key = k.trim().trim_matches(['"', '\'']).to_string();
        let val = v.trim().trim_matches(['"', '\'']).to_string();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        match path.as_slice() {
            ["network", "ethernets"] => defs.push(NpDef {
                id: key.clone(),
                ..NpDef::default()
            }),
            ["network", "ethernets", id] => {
                if let Some(d) = defs.iter_mut().rev().find(|d| d.id == *id) {
                    match key.as_str() {
                        "set-name" => d.set_name = Some(val.clone()),
                        "match" => d.has_match = true,
                        "link" => d.link = Some(val.clone()),
                        k if NETPLAN_KEYS.contains(&k) => d.sriov.push(format!("{k}: {val}")),
                        _ => {}
                    }
                }
            }
            ["network", "ethernets", id, "match"] => {
                if let Some(d) = defs.iter_mut().rev().find(|d| d.id == *id) {
                    match key.as_str() {
                        "name" => d.match_name = Some(val.clone()),
                        "macaddress" => d.match_mac = Some(val.to_ascii_lowercase()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        stack.push((indent, key));
    }
    // A definition with `link: <pf>` is a VF of that PF: netplan creates VFs on it.
    let links: Vec<(String, String)> = defs
        .iter()
        .filter_map(|d| d.link.clone().map(|l| (l, d.id.clone())))
        .collect();
    for (pf, vf) in links {
        if let Some(d) = defs.iter_mut().find(|d| d.id == pf) {
            d.sriov.push(format!("VF {vf} (link: {pf})"));
        }
    }
    defs
}

/// netplan SR-IOV settings for the PF (`virtual-function-count`, `embedded-switch-mode`,
/// `delay-virtual-functions-rebind`, VFs that `link:` to it) and the units netplan's generator
/// makes from them (`netplan-sriov-apply.service` runs `netplan apply --sriov-only` before
/// network-pre.target, `netplan-sriov-rebind.service` after network.target).
pub(super) fn netplan(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
    let mut out = vec![];
    let mut seen: Vec<std::ffi::OsString> = vec![];
    for dir in NETPLAN_DIRS {
        for f in files(root, dir) {
            let name = f.file_name().unwrap_or_default().to_os_string();
            if !name.to_string_lossy().ends_with(".yaml") || seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            for d in netplan_defs(&text)
                .into_iter()
                .filter(|d| !d.sriov.is_empty())
            {
                // The interface netplan means, as its generator decides it (set-name, else the
                // id when there is no match), or what the match selects.
                let is_pf = match (&d.set_name, d.has_match) {
                    (Some(n), _) => *n == ids.name,
                    (None, false) => d.id == ids.name,
                    (None, true) => {
                        d.match_name.as_deref().is_some_and(|p| glob(p, &ids.name))
                            || (d.match_mac.is_some() && d.match_mac == ids.mac)
                    }
                };
                if !is_pf {
                    continue;
                }
                let file = shown(root, &f);
                out.push(
                    Finding::new(
                        "owner-netplan",
                        Some(pf),
                        Outcome::Fail,
                        format!(
                            "netplan {file} sets SR-IOV of {pf} (ethernets.{}: {}): netplan-sriov-apply.service sets its VF count / eSwitch mode at boot, and netplan apply again later",
                            d.id,
                            d.sriov.join(", ")
                        ),
                    )
                    .hint(format!(
                        "remove virtual-function-count, embedded-switch-mode, delay-virtual-functions-rebind and the VFs that link: to {} from {file}, then netplan generate; vflag sets the VF count and eSwitch mode (vfs=, eswitch= in vflag.conf)",
                        d.id
                    )),
                );
            }
        }
    }
    if out.is_empty() {
        // No YAML names the PF, but the generated unit does (e.g. a file vflag cannot parse).
        for u in NETPLAN_UNITS {
            let Ok(text) = std::fs::read_to_string(root.path(u)) else {
                continue;
            };
            let dev = format!("After=sys-subsystem-net-devices-{}.device", ids.name);
            let escaped = format!(
                "After=sys-subsystem-net-devices-{}.device",
                ids.name.replace('-', "\\x2d")
            );
            if text.lines().any(|l| l.trim() == dev || l.trim() == escaped) {
                out.push(
                    Finding::new(
                        "owner-netplan",
                        Some(pf),
                        Outcome::Fail,
                        format!("{u} (generated by netplan) sets SR-IOV of {pf} at boot (netplan apply --sriov-only)"),
                    )
                    .hint(format!("remove the SR-IOV settings of {pf} from /etc/netplan/*.yaml, then netplan generate; vflag sets the VF count and eSwitch mode")),
                );
            }
        }
    }
    out
}
