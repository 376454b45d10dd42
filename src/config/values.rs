//! Values of single keys (shared by vflag.conf and /etc/sysconfig/sriov): each parser returns
//! the value or, as `Err`, what would be allowed.

use super::{before, EswitchMode, NetworkStack};
use crate::names::IfName;
use std::time::Duration;

pub(super) fn yes_no(v: &str) -> Result<bool, String> {
    crate::cmdline::parse_bool(v).ok_or_else(|| "expected yes or no".to_string())
}

pub(super) fn parse_pfs(v: &str) -> Result<Vec<IfName>, String> {
    let mut pfs: Vec<IfName> = Vec::new();
    for w in v.split_whitespace() {
        let pf = IfName::configured(w).map_err(|e| format!("{e}"))?;
        if pfs.contains(&pf) {
            return Err(format!("{pf} is listed twice"));
        }
        pfs.push(pf);
    }
    if pfs.is_empty() {
        return Err("expected interface names separated by spaces".into());
    }
    Ok(pfs)
}

pub(super) fn count(v: &str, max: u32) -> Result<u32, String> {
    let allowed = || format!("expected a whole number from 1 to {max}");
    let n: u64 = v.parse().map_err(|_| allowed())?;
    if n == 0 || n > max as u64 {
        return Err(allowed());
    }
    Ok(n as u32)
}

pub(super) fn one_of<'a>(v: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(v))
        .copied()
        .ok_or_else(|| format!("expected one of: {}", allowed.join(", ")))
}

pub(super) fn parse_eswitch(v: &str) -> Result<EswitchMode, String> {
    Ok(match one_of(v, &["switchdev", "legacy"])? {
        "switchdev" => EswitchMode::Switchdev,
        _ => EswitchMode::Legacy,
    })
}

pub(super) fn parse_stack(v: &str) -> Result<NetworkStack, String> {
    Ok(
        match one_of(
            v,
            &[
                "auto",
                "NetworkManager",
                "systemd-networkd",
                "network-scripts",
                "none",
            ],
        )? {
            "auto" => NetworkStack::Auto,
            "NetworkManager" => NetworkStack::NetworkManager,
            "systemd-networkd" => NetworkStack::SystemdNetworkd,
            "network-scripts" => NetworkStack::NetworkScripts,
            _ => NetworkStack::None,
        },
    )
}

/// Unit names as systemd accepts them (`name.type`, `*`/`?` globs allowed for the generator to
/// expand, e.g. `kolla-*-container.service`).
fn parse_units(v: &str) -> Result<Vec<String>, String> {
    let allowed =
        "expected unit names separated by spaces, e.g. docker.service (globs * and ? allowed)";
    let units: Vec<String> = v.split_whitespace().map(str::to_string).collect();
    for u in &units {
        let (stem, suffix) = u.rsplit_once('.').ok_or(allowed)?;
        let good_suffix = [
            "service", "target", "socket", "mount", "path", "timer", "scope", "slice",
        ]
        .contains(&suffix);
        let good_stem = !stem.is_empty()
            && u.len() <= 255
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@*?".contains(c));
        if !good_suffix || !good_stem {
            return Err(format!("{u:?}: {allowed}"));
        }
    }
    Ok(units)
}

/// `before`: unit names (or globs), none of which the late stage itself starts after.
pub(super) fn parse_before(v: &str) -> Result<Vec<String>, String> {
    let units = parse_units(v)?;
    match units.iter().find_map(|u| before::cycle(u)) {
        Some(why) => Err(format!(
            "{why}; Before= it would be an ordering cycle: name units that start after the \
             network is online, e.g. docker.service"
        )),
        None => Ok(units),
    }
}

/// A systemd-style time span: `30`, `30s`, `500ms`, `2min`, `1min 30s`; 1 s to 1 h.
pub fn timespan(v: &str) -> Result<Duration, String> {
    let allowed = || "expected a time span from 1s to 1h, e.g. 30s, 2min, 1min 30s".to_string();
    let mut total = Duration::ZERO;
    let mut rest = v.trim();
    if rest.is_empty() {
        return Err(allowed());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(allowed());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| allowed())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" | "msec" => 1,
            "" | "s" | "sec" | "second" | "seconds" => 1000,
            "m" | "min" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000,
            _ => return Err(allowed()),
        };
        total = total.saturating_add(Duration::from_millis(n.saturating_mul(ms)));
        rest = rest[unit_len..].trim_start();
    }
    if total < Duration::from_secs(1) || total > Duration::from_secs(3600) {
        return Err(allowed());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MAX_VFS;

    #[test]
    fn timespans() {
        assert_eq!(timespan("30").unwrap(), Duration::from_secs(30));
        assert_eq!(timespan("1min 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(timespan("1500ms").unwrap(), Duration::from_millis(1500));
        for bad in [
            "",
            "0",
            "500ms",
            "2h",
            "-1s",
            "1x",
            "s",
            "99999999999999999999999",
        ] {
            assert!(timespan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(count("8", MAX_VFS), Ok(8));
        for bad in ["0", "-1", "65536", "", "1.5", "８", "0x10"] {
            assert!(count(bad, MAX_VFS).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_validated() {
        assert!(parse_units("docker.service kolla-*-container.service").is_ok());
        for bad in ["docker", "../x.service", "a b/c.service", "x.bogus"] {
            assert!(parse_units(bad).is_err(), "{bad}");
        }
    }
}
