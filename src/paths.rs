//! Every absolute path vflag reads or writes goes through [`Root`], so tests can re-root the
//! whole system (config, `/proc/cmdline`, `/sys`, `/run`) with `VFLAG_ROOT=<dir>`.

use std::path::{Path, PathBuf};

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
}
