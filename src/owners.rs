//! Other owners of a configured PF: tools that also set its VF count or eSwitch mode at boot
//! (or bind its VFs), found from the files they leave. Two owners fight silently — VF counts
//! flip, the eSwitch changes under a bond, VFs are bound early — so `vflag check` (the early
//! unit's `ExecStartPre=`) names each one with its file or unit and the fix.
//!
//! The boot decision (see README "Failure modes"): an owner of the **VF count or eSwitch mode**
//! is a `Fail` — vflag refuses that PF's set-up and changes nothing, so the other owner does
//! exactly what it did before vflag was installed and the bond comes up as it always did (a
//! degraded VF-LAG, never a fight on a port that is about to be bonded). Owners that only
//! reorder start-up (OFED's `openibd`, the interface manager) or only set VF attributes (a
//! `.link` `[SR-IOV]` section) are a `Warn`.
//!
//! Every read goes through [`Root`]; nothing here talks to another process (the check runs
//! before NetworkManager, networkd and netplan have started).

use crate::checks::{Finding, Outcome};
use crate::device::sysfs;
use crate::glob::glob_match as glob;
use crate::names::IfName;
use crate::paths::Root;
use std::path::{Path, PathBuf};

/// The seed's hand-written units; vflag replaces them (README "Migration").
pub const MLNX_VFLAG_UNITS: &[&str] = &["mlnx-vflag-early.service", "mlnx-vflag-final.service"];
/// OFED services that reorder device initialisation (`*@.service`: any instance).
pub const OFED_UNITS: &[&str] = &["openibd.service", "mlnx-interface-mgr@.service"];

const UNIT_DIRS: &[&str] = &["/etc/systemd/system", "/run/systemd/system"];
const UNIT_SEARCH: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// One enabled unit: the `.wants/` or `.requires/` link that enables it and its unit file.
#[derive(Debug)]
struct Enabled {
    name: String,
    /// The enabling link, as a host path (for messages).
    link: PathBuf,
    /// The unit file (re-rooted) when it can be found.
    file: Option<PathBuf>,
}

/// A host path for messages: the re-rooted path minus the root.
fn shown(root: &Root, p: &Path) -> String {
    match p.strip_prefix(root.dir()) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => p.display().to_string(),
    }
}

fn is_masked(root: &Root, name: &str) -> bool {
    UNIT_DIRS.iter().any(|d| {
        std::fs::read_link(root.path(d).join(name))
            .map(|t| t == Path::new("/dev/null"))
            .unwrap_or(false)
    })
}

/// Units enabled in `/etc` or `/run` (`systemctl enable [--runtime]`), masked ones left out.
fn enabled_units(root: &Root) -> Vec<Enabled> {
    let mut out: Vec<Enabled> = vec![];
    for d in UNIT_DIRS {
        let Ok(entries) = std::fs::read_dir(root.path(d)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                (n.ends_with(".wants") || n.ends_with(".requires")) && p.is_dir()
            })
            .collect();
        dirs.sort();
        for w in dirs {
            let Ok(links) = std::fs::read_dir(&w) else {
                continue;
            };
            let mut links: Vec<PathBuf> = links.flatten().map(|e| e.path()).collect();
            links.sort();
            for link in links {
                let name = link
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if out.iter().any(|e| e.name == name) || is_masked(root, &name) {
                    continue;
                }
                let file = unit_file(root, &link, &name);
                out.push(Enabled {
                    link: PathBuf::from(shown(root, &link)),
                    name,
                    file,
                });
            }
        }
    }
    out
}

/// The unit file behind an enabling link: its target (re-rooted when absolute), else the unit
/// (or its template) in the unit search path.
fn unit_file(root: &Root, link: &Path, name: &str) -> Option<PathBuf> {
    if let Ok(t) = std::fs::read_link(link) {
        let p = if t.is_absolute() {
            root.path(&t)
        } else {
            link.parent()?.join(t)
        };
        if p.is_file() {
            return Some(p);
        }
    }
    let template = name
        .split_once('@')
        .map(|(a, b)| format!("{a}@{}", &b[b.find('.').unwrap_or(b.len())..]));
    UNIT_SEARCH.iter().find_map(|d| {
        [Some(name.to_string()), template.clone()]
            .into_iter()
            .flatten()
            .map(|n| root.path(d).join(n))
            .find(|p| p.is_file())
    })
}

fn unit_matches(enabled: &str, wanted: &str) -> bool {
    enabled == wanted
        || (wanted.ends_with("@.service")
            && enabled.starts_with(wanted.trim_end_matches(".service"))
            && enabled.ends_with(".service"))
}

/// Host-wide owners: the old mlnx-vflag units (Fail) and OFED's services (Warn).
pub fn host(root: &Root) -> Vec<Finding> {
    let enabled = enabled_units(root);
    let mut out = vec![];
    let old: Vec<&Enabled> = enabled
        .iter()
        .filter(|e| MLNX_VFLAG_UNITS.contains(&e.name.as_str()))
        .collect();
    if !old.is_empty() {
        let names: Vec<&str> = old.iter().map(|e| e.name.as_str()).collect();
        let links: Vec<String> = old.iter().map(|e| e.link.display().to_string()).collect();
        out.push(
            Finding::new(
                "owner-mlnx-vflag",
                None,
                Outcome::Fail,
                format!(
                    "{} still enabled ({}): the old scripts set up the same NIC; vflag refuses to set it up a second time on the same boot (nothing changed, the old units still do what they did)",
                    names.join(" and "),
                    links.join(", ")
                ),
            )
            .hint(format!(
                "systemctl disable {}, then remove the old unit files and scripts (README \"Migration\"; the vflag Ansible role does it), and reboot",
                names.join(" ")
            )),
        );
    }
    for u in OFED_UNITS {
        for e in enabled.iter().filter(|e| unit_matches(&e.name, u)) {
            out.push(
                Finding::new(
                    "ofed-services",
                    None,
                    Outcome::Warn,
                    format!(
                        "{} is enabled ({}); it interferes with device initialisation order",
                        e.name,
                        e.link.display()
                    ),
                )
                .hint(format!("systemctl disable {}", e.name)),
            );
        }
    }
    out
}

/// What identifies the PF in other tools' files.
struct PfIds {
    name: String,
    /// Permanent MAC (a bond port's `bonding_slave/perm_hwaddr`, else `address`), lowercase.
    mac: Option<String>,
    /// The parent device's name (a PCI address such as `0000:37:00.0`).
    device: Option<String>,
}

impl PfIds {
    fn read(root: &Root, pf: &IfName) -> Self {
        let attr = |a: &str| sysfs::netdev_attr(root, pf.as_str(), a).ok().flatten();
        PfIds {
            name: pf.as_str().to_string(),
            mac: attr("bonding_slave/perm_hwaddr")
                .or_else(|| attr("address"))
                .map(|m| m.to_ascii_lowercase()),
            device: sysfs::link_basename(
                &root.path("/sys/class/net").join(pf.as_str()).join("device"),
            )
            .ok()
            .flatten(),
        }
    }

    /// `text` names this PF: its name as a whole word, or its PCI device.
    fn named_in(&self, text: &str) -> bool {
        word_in(text, &self.name)
            || self
                .device
                .as_deref()
                .is_some_and(|d| d.contains(':') && text.contains(d))
    }
}

/// `w` occurs in `text` with no interface-name character on either side.
fn word_in(text: &str, w: &str) -> bool {
    let ok = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(c)));
    text.match_indices(w)
        .any(|(i, _)| ok(text[..i].chars().next_back()) && ok(text[i + w.len()..].chars().next()))
}

/// Files of `dir` (re-rooted), sorted; none when it does not exist. Symlinks are kept: one to
/// /dev/null hides the same name in a later directory (and reads empty).
fn files(root: &Root, dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.path(dir))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() || p.is_symlink())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every owner of this PF's SR-IOV settings other than vflag (and a pass when there is none).
pub fn for_pf(root: &Root, pf: &IfName) -> Vec<Finding> {
    let ids = PfIds::read(root, pf);
    let mut out = vec![];
    out.extend(units(root, pf, &ids));
    out.extend(udev_rules(root, pf, &ids));
    out.extend(nm_keyfiles(root, pf, &ids));
    out.extend(nm_ifcfg(root, pf, &ids));
    out.extend(networkd_link(root, pf));
    out.extend(netplan(root, pf, &ids));
    if out.is_empty() {
        out.push(Finding::new(
            "owners",
            Some(pf),
            Outcome::Pass,
            "no other owner of its VFs or eSwitch found (units, udev rules, NetworkManager, .link, netplan)".into(),
        ));
    }
    out
}

/// Lines of a unit file that run something (`ExecStart=`, `ExecStartPre=`, ...).
fn exec_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Exec") && l.contains('='))
}

/// Enabled units (other than vflag's and the old mlnx-vflag ones, reported host-wide) whose
/// commands write this PF's `sriov_numvfs`: stackhpc.linux.sriov's
/// `virtual-functions-<pf>.service`, hand-written units.
fn units(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
    let mut out = vec![];
    for e in enabled_units(root) {
        if e.name.starts_with("vflag") || MLNX_VFLAG_UNITS.contains(&e.name.as_str()) {
            continue;
        }
        let Some(file) = &e.file else { continue };
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let Some(line) = exec_lines(&text).find(|l| l.contains("sriov_numvfs") && ids.named_in(l))
        else {
            continue;
        };
        let stackhpc = e.name == format!("virtual-functions-{pf}.service");
        let fix = if stackhpc {
            format!("set on_boot_configuration_enabled: false for {pf} in sriov_devices (stackhpc.linux.sriov) and re-run the role, or systemctl disable {} and remove {}", e.name, shown(root, file))
        } else {
            format!(
                "systemctl disable {} (vflag sets the VF count: vfs= in vflag.conf)",
                e.name
            )
        };
        out.push(
            Finding::new(
                "owner-unit",
                Some(pf),
                Outcome::Fail,
                format!(
                    "{} ({}, enabled by {}) writes {pf}'s VF count at boot: {line}",
                    e.name,
                    shown(root, file),
                    e.link.display()
                ),
            )
            .hint(fix),
        );
    }
    out
}

const UDEV_RULE_DIRS: &[&str] = &[
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
];

/// The first value of `KEY=="..."` in a udev rule line.
fn udev_match<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("{key}==\""))? + key.len() + 3;
    line[at..].split('"').next()
}

/// udev rules (as udev reads them: a name in /etc hides the same name in /run and /usr/lib)
/// that write this PF's `sriov_numvfs` (`RUN+="... > .../sriov_numvfs"`,
/// `ATTR{device/sriov_numvfs}="N"`), stackhpc.linux.sriov's `70-sriov.rules` among them.
fn udev_rules(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
    let mut seen: Vec<std::ffi::OsString> = vec![];
    let mut out = vec![];
    for dir in UDEV_RULE_DIRS {
        for f in files(root, dir) {
            let name = f.file_name().unwrap_or_default().to_os_string();
            if !name.to_string_lossy().ends_with(".rules") || seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let stackhpc = text
                .lines()
                .any(|l| l.trim_start().starts_with("# BEGIN SRIOV"));
            // A rule continues on the next line after a trailing backslash.
            let joined = text.replace("\\\n", " ");
            for line in joined.lines().map(str::trim) {
                if line.starts_with('#') || !line.contains("sriov_numvfs") {
                    continue;
                }
                // Only a match on the attribute, not a write.
                if line.contains("sriov_numvfs}==") && !line.contains("RUN") {
                    continue;
                }
                let kernel = udev_match(line, "KERNEL").or_else(|| udev_match(line, "NAME"));
                let for_pf = match kernel {
                    Some(k) => k.split('|').any(|alt| glob(alt, &ids.name)),
                    // No name match: a rule that names the PF (or its PCI device) itself, or
                    // one for the device it matched (`%k`, `ATTR{device/sriov_numvfs}=`), not
                    // one that names another device's path.
                    None => {
                        ids.named_in(line)
                            || line.contains("/sys/class/net/%k/")
                            || line.contains("/sys/class/net/$kernel/")
                            || !["/sys/class/net/", "/sys/bus/pci/devices/", "/sys/devices/"]
                                .iter()
                                .any(|p| line.contains(p))
                    }
                };
                if !for_pf {
                    continue;
                }
                let file = shown(root, &f);
                let fix = if stackhpc {
                    format!("set on_boot_configuration_enabled: false for {pf} in sriov_devices (stackhpc.linux.sriov) and re-run the role (it empties the BEGIN SRIOV block of {file}), then udevadm control --reload")
                } else {
                    format!("delete that rule from {file} (vflag sets the VF count: vfs= in vflag.conf), then udevadm control --reload")
                };
                out.push(
                    Finding::new(
                        "owner-udev",
                        Some(pf),
                        Outcome::Fail,
                        format!("udev rule in {file} writes {pf}'s VF count when the device appears: {line}"),
                    )
                    .hint(fix),
                );
            }
        }
    }
    out
}

/// A GLib key file / INI file: `(section, key, value)` triples, comments dropped.
fn keyfile(text: &str) -> Vec<(String, String, String)> {
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
fn nm_name_match(list: &str, name: &str) -> bool {
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
fn nm_keyfiles(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
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
fn nm_ifcfg(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
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

/// The `.link` file (and drop-ins) udev applied to the PF, as udev recorded it in its database
/// (`ID_NET_LINK_FILE`, `ID_NET_LINK_FILE_DROPINS` of `/run/udev/data/n<ifindex>`): no
/// re-implementation of `[Match]`. `SR-IOVVirtualFunctions=` sets the VF count when the device
/// appears (Fail); `[SR-IOV]` sections only set VF attributes (Warn).
fn networkd_link(root: &Root, pf: &IfName) -> Vec<Finding> {
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
fn netplan(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
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

#[cfg(test)]
mod tests;
