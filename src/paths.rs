//! Every absolute path vflag reads or writes goes through [`Root`], so tests can re-root the
//! whole system (config, `/proc/cmdline`, `/sys`, `/run`) with `VFLAG_ROOT=<dir>`.

use crate::names::IfName;
use std::path::{Path, PathBuf};

/// vflag's runtime directory (the units' `RuntimeDirectory`, gone at reboot). Everything in it,
/// all built here:
///
/// | file | what | written by |
/// | --- | --- | --- |
/// | `<pf>.json` | what the early stage did, for the late one | [`crate::stages::State`] |
/// | `nic-<dddd:bb:dd>.lock` | the per-NIC lock and its holder | [`crate::stages::NicLock`] |
/// | `representor-names` | some LAG wants representors named `<pf>r<vf>` | the early stage |
/// | `hotplug/<pf>` | the ifindex the early stage finished with | [`crate::hotplug`] |
/// | `deadline-<unit>` | a unit's start and extensions | [`crate::budget`] |
pub const RUN_DIR: &str = "/run/vflag";

/// The environment variable that re-roots every path (tests only; unset on real hosts).
pub const ROOT_ENV: &str = "VFLAG_ROOT";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root(PathBuf);

impl Root {
    /// `VFLAG_ROOT` if set and non-empty, else `/`.
    pub fn from_env() -> Self {
        match std::env::var_os(ROOT_ENV) {
            Some(dir) if !dir.is_empty() => Root(PathBuf::from(dir)),
            _ => Root(PathBuf::from("/")),
        }
    }

    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root(dir.into())
    }

    pub fn is_real(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// Map an absolute system path (e.g. `/sys/class/net`) into this root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let rel = abs.as_ref().strip_prefix("/").unwrap_or(abs.as_ref());
        self.0.join(rel)
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// [`RUN_DIR`] under this root.
    pub fn run_dir(&self) -> PathBuf {
        self.path(RUN_DIR)
    }

    /// The early stage's record for `pf`.
    pub fn state_file(&self, pf: &IfName) -> PathBuf {
        self.run_dir().join(format!("{}.json", pf.as_str()))
    }

    /// The lock of one NIC (`id`: its PCI slot, else its device name).
    pub fn nic_lock(&self, id: &str) -> PathBuf {
        self.run_dir().join(format!("nic-{id}.lock"))
    }

    /// Present once some LAG wanted its representors named.
    pub fn representor_names_flag(&self) -> PathBuf {
        self.run_dir().join("representor-names")
    }

    /// The hot-plug markers' directory.
    pub fn hotplug_dir(&self) -> PathBuf {
        self.run_dir().join("hotplug")
    }

    /// A unit's deadline anchor.
    pub fn deadline_file(&self, unit: &str) -> PathBuf {
        self.run_dir().join(format!("deadline-{unit}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reroots_absolute_paths() {
        let r = Root::new("/tmp/x");
        assert_eq!(
            r.path("/sys/class/net"),
            PathBuf::from("/tmp/x/sys/class/net")
        );
        assert_eq!(
            Root::new("/").path("/proc/cmdline"),
            PathBuf::from("/proc/cmdline")
        );
    }

    #[test]
    fn run_dir_layout() {
        let r = Root::new("/tmp/x");
        let pf = IfName::new("ens3f0").unwrap();
        assert_eq!(
            r.state_file(&pf),
            PathBuf::from("/tmp/x/run/vflag/ens3f0.json")
        );
        assert_eq!(
            r.nic_lock("0000:37:00"),
            PathBuf::from("/tmp/x/run/vflag/nic-0000:37:00.lock")
        );
        assert_eq!(
            r.representor_names_flag(),
            PathBuf::from("/tmp/x/run/vflag/representor-names")
        );
        assert_eq!(r.hotplug_dir(), PathBuf::from("/tmp/x/run/vflag/hotplug"));
        assert_eq!(
            r.deadline_file("vflag@ens3f0.service"),
            PathBuf::from("/tmp/x/run/vflag/deadline-vflag@ens3f0.service")
        );
    }
}
