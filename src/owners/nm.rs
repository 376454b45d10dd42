//! NetworkManager profiles (keyfile and ifcfg-rh) with SR-IOV settings for a PF.

use super::*;

/// A GLib key file / INI file: `(section, key, value)` triples, comments dropped.
pub(super) fn keyfile(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = vec![];
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_string();
        } else if let Some((k, v)) = l.split_once('=') {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

const NM_DIRS: &[&str] = &[
    "/etc/NetworkManager/system-connections",
    "/run/NetworkManager/system-connections",
    "/usr/lib/NetworkManager/system-connections",
];

/// Files NetworkManager's keyfile plugin loads from `dir`: `*.nmconnection`, and in /etc also
/// other names that are not backups; never files readable or writable by group or others
/// (NetworkManager ignores those as insecure).
fn nm_loads(dir: &str, f: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let name = f.file_name().unwrap_or_default().to_string_lossy();
    let by_name = name.ends_with(".nmconnection")
        || (dir.starts_with("/etc/")
            && !name.starts_with('.')
            && !name.ends_with('~')
            && ![
                ".bak", ".orig", ".rej", ".swp", ".tmp", ".rpmnew", ".rpmsave", ".rpmorig",
            ]
            .iter()
            .any(|s| name.ends_with(s))
            && !name.contains(".dpkg-"));
    let secure = std::fs::metadata(f)
        .map(|m| m.permissions().mode() & 0o077 == 0)
        .unwrap_or(false);
    by_name && secure
}

/// NetworkManager's `match.interface-name` list: any positive pattern (plain or `~`) must
/// match when there is one, no `!` pattern may.
pub(super) fn nm_name_match(list: &str, name: &str) -> bool {
    let pats: Vec<&str> = list
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let neg = pats
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .any(|p| glob(p, name));
    let pos: Vec<&str> = pats
        .iter()
        .filter(|p| !p.starts_with('!'))
        .map(|p| p.trim_start_matches(['~', '&']))
        .collect();
    !neg && (pos.is_empty() || pos.iter().any(|p| glob(p, name)))
}

/// NetworkManager keyfile profiles that apply to this PF and carry an `[sriov]` setting:
/// NetworkManager then sets the VF count (also to 0 when `total-vfs` is unset), autoprobe and,
/// since 1.46, the eSwitch mode, every time it activates the profile.
pub(super) fn nm_keyfiles(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
    let mut out = vec![];
    for dir in NM_DIRS {
        for f in files(root, dir) {
            if !nm_loads(dir, &f) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let kv = keyfile(&text);
            let get = |sec: &[&str], key: &str| {
                kv.iter()
                    .find(|(s, k, _)| sec.contains(&s.as_str()) && k == key)
                    .map(|(_, _, v)| v.as_str())
            };
            let has_sriov = text.lines().any(|l| l.trim() == "[sriov]");
            // SR-IOV settings of another kind of profile (InfiniBand...) are not for an
            // Ethernet PF.
            let ethernet = get(&["connection"], "type")
                .is_none_or(|t| t == "ethernet" || t == "802-3-ethernet");
            if !has_sriov || !ethernet {
                continue;
            }
            let ifname = get(&["connection"], "interface-name").filter(|v| !v.is_empty());
            let mac = get(&["ethernet", "802-3-ethernet"], "mac-address")
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase);
            let matches = ifname.is_none_or(|n| n == ids.name)
                && mac.as_deref().is_none_or(|m| Some(m) == ids.mac.as_deref())
                && get(&["match"], "interface-name").is_none_or(|l| nm_name_match(l, &ids.name));
            if !matches {
                continue;
            }
            let settings: Vec<String> = kv
                .iter()
                .filter(|(s, _, _)| s == "sriov")
                .map(|(_, k, v)| format!("sriov.{k}={v}"))
                .collect();
            let id = get(&["connection"], "id")
                .map(str::to_string)
                .unwrap_or_else(|| {
                    f.file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                });
            let by = match (ifname, &mac) {
                (Some(n), _) => format!("interface-name={n}"),
                (None, Some(m)) => format!("mac-address={m}"),
                (None, None) => "no interface-name or mac-address: any Ethernet device".into(),
            };
            let file = shown(root, &f);
            out.push(
                Finding::new(
                    "owner-nm",
                    Some(pf),
                    Outcome::Fail,
                    format!(
                        "NetworkManager profile \"{id}\" ({file}, {by}) has an [sriov] setting ({}): NetworkManager sets {pf}'s VF count (and autoprobe, eSwitch mode) every time it activates it",
                        if settings.is_empty() { "total-vfs unset: 0 VFs".to_string() } else { settings.join(" ") }
                    ),
                )
                .hint(format!(
                    "nmcli connection modify \"{id}\" remove sriov (or delete the [sriov] section from {file} and run nmcli connection reload); vflag sets the VF count and eSwitch mode (vfs=, eswitch= in vflag.conf)"
                )),
            );
        }
    }
    out
}

/// Shell-style `KEY=value` of an ifcfg file, quotes removed.
fn shell_vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// NetworkManager's ifcfg-rh profiles (Rocky/RHEL) for this PF with `SRIOV_*` keys
/// (`SRIOV_TOTAL_VFS`, `SRIOV_VF<n>`, `SRIOV_AUTOPROBE_DRIVERS`, `SRIOV_ESWITCH_MODE`...).
pub(super) fn nm_ifcfg(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
    let dir = "/etc/sysconfig/network-scripts";
    let mut out = vec![];
    for f in files(root, dir) {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(suffix) = name.strip_prefix("ifcfg-") else {
            continue;
        };
        if suffix.contains('.') || suffix.ends_with('~') {
            continue; // backups (ifcfg-x.bak, ifcfg-x.orig, ifcfg-x~) are not read
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let vars = shell_vars(&text);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let device = get("DEVICE").filter(|d| !d.is_empty());
        let hwaddr = get("HWADDR").map(str::to_ascii_lowercase);
        let matches = match device {
            Some(d) => d == ids.name,
            None => match &hwaddr {
                Some(h) => Some(h.as_str()) == ids.mac.as_deref(),
                None => suffix == ids.name,
            },
        };
        let sriov: Vec<String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("SRIOV_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !matches || sriov.is_empty() {
            continue;
        }
        let file = shown(root, &f);
        out.push(
            Finding::new(
                "owner-nm",
                Some(pf),
                Outcome::Fail,
                format!(
                    "NetworkManager ifcfg profile {file} for {pf} has {}: NetworkManager sets {pf}'s VF count every time it activates it",
                    sriov.join(" ")
                ),
            )
            .hint(format!(
                "delete the SRIOV_* lines from {file}, then nmcli connection reload; vflag sets the VF count and eSwitch mode (vfs=, eswitch= in vflag.conf)"
            )),
        );
    }
    out
}
