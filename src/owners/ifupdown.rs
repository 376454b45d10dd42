//! Debian ifupdown: an `allow-hotplug` stanza for a PF.
//!
//! ifupdown's udev helper (`80-ifupdown.rules`, `ifupdown-hotplug`) starts `ifup@<if>.service`
//! for an `allow-hotplug` interface the moment it appears: after boot (hot-plug, driver reload)
//! ifenslave bonds the PF before vflag's set-up, and vflag then refuses the bonded port (VF-LAG
//! degraded). Nothing holds it back, so this is a warning with the fix (`auto` instead).

use super::*;

/// `/etc/network/interfaces` and the files it sources (`source PATH|DIR/*`,
/// `source-directory DIR`; relative paths from `/etc/network`), one level deep.
fn interfaces_files(root: &Root) -> Vec<(PathBuf, String)> {
    let main = root.path("/etc/network/interfaces");
    let Ok(text) = std::fs::read_to_string(&main) else {
        return vec![];
    };
    let mut out = vec![];
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(kw), Some(arg)) = (w.next(), w.next()) else {
            continue;
        };
        let arg = if arg.starts_with('/') {
            arg.to_string()
        } else {
            format!("/etc/network/{arg}")
        };
        let found = match (kw, arg.strip_suffix("/*")) {
            ("source", Some(dir)) => files(root, dir),
            ("source", None) => vec![root.path(&arg)],
            ("source-directory", _) => files(root, &arg),
            _ => continue,
        };
        for p in found {
            if let Ok(t) = std::fs::read_to_string(&p) {
                out.push((p, t));
            }
        }
    }
    out.insert(0, (main, text));
    out
}

pub(super) fn ifupdown_hotplug(root: &Root, pf: &IfName) -> Vec<Finding> {
    let mut out = vec![];
    for (p, text) in interfaces_files(root) {
        let listed = text.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("allow-hotplug") && w.any(|n| n == pf.as_str())
        });
        if listed {
            let file = shown(root, &p);
            out.push(
                Finding::new(
                    "owner-ifupdown",
                    Some(pf),
                    Outcome::Warn,
                    format!("{file} has allow-hotplug {pf}: after boot (hot-plug, driver reload) ifupdown's udev helper starts ifup@{pf}.service the moment {pf} appears, which bonds it before vflag's set-up (vflag then leaves it alone: VF-LAG degraded)"),
                )
                .hint(format!("write auto {pf} instead of allow-hotplug {pf} in {file}: networking.service brings it up at boot after vflag@{pf}.service, and vflag hands it over with ifup after a hot-plug")),
            );
        }
    }
    out
}
