//! Validated names: kernel interface names and the systemd unit names built from them.
//! Every name that reaches a path or a unit goes through [`IfName::new`] first, so a hostile
//! instance (`../x`, `a/b`, 16+ bytes) is refused before any path is built.

use std::fmt;

/// The early stage's template (`vflag@<pf>.service`, oneshot, RemainAfterExit=yes).
pub const EARLY_TEMPLATE: &str = "vflag@";
/// The late stage's template (`vflag-rebind@<pf>.service`, oneshot, RemainAfterExit=yes).
pub const LATE_TEMPLATE: &str = "vflag-rebind@";
/// The hot-plug unit (`units/vflag-hotplug@.service`): runs the early stage, the hand-over and
/// the late stage again on every start (not RemainAfterExit).
pub const HOTPLUG_TEMPLATE: &str = "vflag-hotplug@";

/// IFNAMSIZ is 16 including the terminating NUL.
pub const IFNAME_MAX: usize = 15;

/// Refused in configured PF names although the kernel allows them (see [`IfName::configured`]).
pub const SHELL_CHARS: &str = ";&|<>()$`'\"*?[]{}!~#";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("interface name is empty")]
    Empty,
    #[error("interface name {0:?} is longer than {IFNAME_MAX} bytes")]
    TooLong(String),
    #[error("interface name {0:?} is not allowed (\".\" and \"..\" are reserved)")]
    Reserved(String),
    #[error("interface name {0:?} contains {1:?}; the kernel forbids '/', ':', whitespace and control characters")]
    BadChar(String, char),
    #[error("interface name {0:?} contains {1:?}; a configured PF name may not contain shell characters ({SHELL_CHARS})")]
    Unusual(String, char),
}

/// A network interface name that the kernel would accept (`dev_valid_name()` rules).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct IfName(String);

impl IfName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > IFNAME_MAX {
            return Err(NameError::TooLong(name.to_string()));
        }
        if name == "." || name == ".." {
            return Err(NameError::Reserved(name.to_string()));
        }
        // The kernel forbids '/', ':' and isspace(); control bytes are refused too because such
        // a name cannot be written into a unit file or a journal line unambiguously.
        if let Some(c) = name
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(NameError::BadChar(name.to_string(), c));
        }
        Ok(IfName(name.to_string()))
    }

    /// A PF name from a configuration file: stricter than the kernel. No NIC port is called
    /// `ens3f0;reboot`; such a value is a mistake (or a command meant for the shell that sourced
    /// the seed's file) and is refused rather than carried into units, udev rules and logs.
    pub fn configured(name: &str) -> Result<Self, NameError> {
        let n = Self::new(name)?;
        match name.chars().find(|c| SHELL_CHARS.contains(*c)) {
            Some(c) => Err(NameError::Unusual(name.to_string(), c)),
            None => Ok(n),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instance part of `vflag@<instance>.service`, escaped exactly as `systemd-escape` does.
    pub fn unit_instance(&self) -> String {
        libsystemd::unit::escape_name(&self.0)
    }

    /// `<template><instance>.service`, e.g. `vflag@ens3f0.service`: the one place vflag's unit
    /// names are built.
    pub fn unit(&self, template: &str) -> String {
        format!("{template}{}.service", self.unit_instance())
    }

    /// `vflag@<pf>.service`, the early stage.
    pub fn early_unit(&self) -> String {
        self.unit(EARLY_TEMPLATE)
    }

    /// `vflag-rebind@<pf>.service`, the late stage.
    pub fn late_unit(&self) -> String {
        self.unit(LATE_TEMPLATE)
    }

    /// The device unit systemd creates for this interface:
    /// `sys-subsystem-net-devices-<escaped>.device` (= `systemd-escape --path --suffix=device`).
    pub fn device_unit(&self) -> String {
        format!(
            "{}.device",
            libsystemd::unit::escape_path(&format!("/sys/subsystem/net/devices/{}", self.0))
        )
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Undo systemd's `\xNN` escaping of an instance name (what `%I` does), for callers that
/// were handed the raw `%i`. Invalid escapes are kept literally; [`IfName::new`] judges the result.
pub fn unescape_instance(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kernel_names() {
        for n in [
            "ens3f0",
            "eni10np1",
            "bond0",
            "a-b",
            "x.y",
            "123456789012345",
            "é",
        ] {
            assert!(IfName::new(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_hostile_names() {
        assert_eq!(IfName::new(""), Err(NameError::Empty));
        assert!(matches!(IfName::new(".."), Err(NameError::Reserved(_))));
        assert!(matches!(
            IfName::new("../../x"),
            Err(NameError::BadChar(_, '/'))
        ));
        assert!(matches!(
            IfName::new("a:b"),
            Err(NameError::BadChar(_, ':'))
        ));
        assert!(matches!(
            IfName::new("a b"),
            Err(NameError::BadChar(_, ' '))
        ));
        assert!(matches!(
            IfName::new("a\nb"),
            Err(NameError::BadChar(_, '\n'))
        ));
        assert!(matches!(
            IfName::new("1234567890123456"),
            Err(NameError::TooLong(_))
        ));
    }

    #[test]
    fn unit_names() {
        let n = IfName::new("ens3f0").unwrap();
        assert_eq!(n.unit_instance(), "ens3f0");
        assert_eq!(n.device_unit(), "sys-subsystem-net-devices-ens3f0.device");
        let n = IfName::new("bond-a").unwrap();
        assert_eq!(n.unit_instance(), "bond\\x2da");
        assert_eq!(n.early_unit(), "vflag@bond\\x2da.service");
        assert_eq!(n.late_unit(), "vflag-rebind@bond\\x2da.service");
        assert_eq!(n.unit(HOTPLUG_TEMPLATE), "vflag-hotplug@bond\\x2da.service");
        assert_eq!(
            n.device_unit(),
            "sys-subsystem-net-devices-bond\\x2da.device"
        );
        assert_eq!(unescape_instance("bond\\x2da"), b"bond-a");
    }
}
