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

mod ifupdown;
mod netplan;
mod networkd;
mod nm;
mod udev;

use ifupdown::ifupdown_hotplug;
use netplan::netplan;
use networkd::networkd_link;
use nm::{nm_ifcfg, nm_keyfiles};
use udev::udev_rules;

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
    out.extend(ifupdown_hotplug(root, pf));
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

#[cfg(test)]
mod tests;
