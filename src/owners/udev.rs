//! udev rules that write a PF's `sriov_numvfs`.

use super::*;

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
pub(super) fn udev_rules(root: &Root, pf: &IfName, ids: &PfIds) -> Vec<Finding> {
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
