//! Which drop-ins `vflag.conf.d/*.conf` are read, by systemd's rules: ordered by file name across
//! the directories, a later directory's file replaces a same-named earlier one, a symbolic link
//! is followed, and a link to /dev/null masks the name. A name that cannot be shown safely
//! (control characters, not UTF-8) is refused: it would end up in logs and generated units.

use super::{Diagnostic, Level};
use crate::paths::Root;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The drop-in directory under each configuration directory.
pub const SUBDIR: &str = "vflag.conf.d";

/// No longer read: /run/vflag is the writable RuntimeDirectory of vflag's own (hardened) units,
/// and the generator that reads configuration runs unconfined at every daemon-reload.
pub const IGNORED_DIR: &str = crate::paths::RUN_DIR;

/// The drop-ins to read from `dirs` (lowest priority first), as the host sees their paths.
pub(super) fn scan(root: &Root, dirs: &[&str], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let dir = Path::new(dir).join(SUBDIR);
        for name in names(root, &dir) {
            let Some(name) = safe_name(&name) else {
                diags.push(dir_diag(
                    Level::Error,
                    &dir,
                    format!(
                        "drop-in file name {name:?} contains control characters or is not UTF-8; \
                         this file is ignored (rename it)"
                    ),
                ));
                continue;
            };
            let path = dir.join(name);
            if masked(&root.path(&path)) {
                found.remove(name);
            } else {
                found.insert(name.to_string(), path);
            }
        }
    }
    found.into_values().collect()
}

/// A warning naming the drop-ins left in [`IGNORED_DIR`], if any.
pub(super) fn warn_ignored(root: &Root, diags: &mut Vec<Diagnostic>) {
    let dir = Path::new(IGNORED_DIR).join(SUBDIR);
    let names: Vec<String> = names(root, &dir).iter().map(|n| format!("{n:?}")).collect();
    if names.is_empty() {
        return;
    }
    diags.push(dir_diag(
        Level::Warning,
        &dir,
        format!(
            "drop-ins here are ignored: {}; {IGNORED_DIR} is the writable runtime directory of \
             vflag's own units, so vflag does not take configuration from it; \
             move them to /etc/vflag/{SUBDIR}",
            names.join(", ")
        ),
    ));
}

/// The `*.conf` entries of `dir` that are not dotfiles (any file type), unsorted.
fn names(root: &Root, dir: &Path) -> Vec<std::ffi::OsString> {
    let Ok(entries) = std::fs::read_dir(root.path(dir)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| {
            let b = n.as_bytes();
            b.ends_with(b".conf") && !b.starts_with(b".")
        })
        .collect()
}

fn safe_name(name: &OsStr) -> Option<&str> {
    name.to_str().filter(|s| !s.chars().any(char::is_control))
}

/// A symbolic link (possibly through others) to /dev/null, as systemd masks a drop-in.
fn masked(path: &Path) -> bool {
    path.is_symlink() && std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null"))
}

fn dir_diag(level: Level, dir: &Path, message: String) -> Diagnostic {
    Diagnostic {
        level,
        file: dir.to_path_buf(),
        line: None,
        section: None,
        key: None,
        message,
    }
}

/// Read a drop-in, following a symbolic link; an error names the link's target.
pub(super) fn read(root: &Root, file: &Path) -> Result<String, String> {
    let path = root.path(file);
    std::fs::read_to_string(&path).map_err(|e| match std::fs::read_link(&path) {
        Ok(target) => format!("{e} (a symbolic link to {target:?})"),
        Err(_) => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{load, Level, Loaded};
    use crate::paths::Root;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    const ETC: &str = "etc/vflag/vflag.conf.d";
    const USR: &str = "usr/lib/vflag/vflag.conf.d";

    fn put(root: &Path, rel: &str, text: &str) -> std::path::PathBuf {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn link(root: &Path, rel: &str, target: &Path) {
        std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
        symlink(target, root.join(rel)).unwrap();
    }

    fn lags(loaded: &Loaded) -> Vec<&str> {
        loaded.plan.lags.iter().map(|l| l.name.as_str()).collect()
    }

    fn shown(loaded: &Loaded) -> Vec<String> {
        loaded.diagnostics.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn symlinked_drop_in_is_read() {
        let t = tempfile::tempdir().unwrap();
        let site = put(t.path(), "srv/site.conf", "[lag a]\npfs = p0 p1\n");
        link(t.path(), &format!("{ETC}/50-site.conf"), &site);
        let loaded = load(&Root::new(t.path()));
        assert!(loaded.diagnostics.is_empty(), "{:?}", shown(&loaded));
        assert_eq!(lags(&loaded), ["a"]);
        assert_eq!(
            loaded.plan.lags[0].source,
            Path::new("/etc/vflag/vflag.conf.d/50-site.conf")
        );
    }

    #[test]
    fn symlink_to_dev_null_masks_the_name() {
        let t = tempfile::tempdir().unwrap();
        put(
            t.path(),
            &format!("{USR}/50-site.conf"),
            "[lag a]\npfs = p0\n",
        );
        put(
            t.path(),
            &format!("{USR}/60-other.conf"),
            "[lag b]\npfs = p1\n",
        );
        link(
            t.path(),
            &format!("{ETC}/50-site.conf"),
            Path::new("/dev/null"),
        );
        let loaded = load(&Root::new(t.path()));
        assert!(loaded.diagnostics.is_empty(), "{:?}", shown(&loaded));
        assert_eq!(lags(&loaded), ["b"]);
    }

    #[test]
    fn dangling_symlink_is_an_error_naming_its_target() {
        let t = tempfile::tempdir().unwrap();
        put(
            t.path(),
            &format!("{USR}/50-site.conf"),
            "[lag a]\npfs = p0\n",
        );
        link(
            t.path(),
            &format!("{ETC}/50-site.conf"),
            Path::new("/nonexistent/x.conf"),
        );
        let loaded = load(&Root::new(t.path()));
        assert!(lags(&loaded).is_empty(), "the broken override replaces it");
        let shown = shown(&loaded);
        assert!(
            shown[0].starts_with("/etc/vflag/vflag.conf.d/50-site.conf: cannot read:")
                && shown[0].contains("a symbolic link to \"/nonexistent/x.conf\""),
            "{shown:?}"
        );
    }

    #[test]
    fn file_name_with_control_characters_is_refused() {
        let t = tempfile::tempdir().unwrap();
        put(
            t.path(),
            &format!("{ETC}/50-a\nb.conf"),
            "[lag a]\npfs = p0\n",
        );
        put(
            t.path(),
            &format!("{ETC}/60-c\x1b.conf"),
            "[lag c]\npfs = p2\n",
        );
        put(
            t.path(),
            &format!("{ETC}/70-ok.conf"),
            "[lag b]\npfs = p1\n",
        );
        let loaded = load(&Root::new(t.path()));
        assert_eq!(lags(&loaded), ["b"]);
        let shown = shown(&loaded);
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown
            .iter()
            .all(|d| !d.contains('\n') && !d.contains('\x1b')));
        assert!(
            shown.contains(&"/etc/vflag/vflag.conf.d: drop-in file name \"50-a\\nb.conf\" contains control characters or is not UTF-8; this file is ignored (rename it)".to_string()),
            "{shown:?}"
        );
        assert!(loaded.errors().count() == 2);
    }

    #[test]
    fn run_drop_ins_are_ignored_with_a_warning() {
        let t = tempfile::tempdir().unwrap();
        put(
            t.path(),
            "run/vflag/vflag.conf.d/20-x.conf",
            "[lag evil]\npfs = p9\n",
        );
        put(t.path(), "etc/vflag/vflag.conf", "[lag a]\npfs = p0\n");
        let loaded = load(&Root::new(t.path()));
        assert_eq!(lags(&loaded), ["a"]);
        assert_eq!(loaded.diagnostics.len(), 1);
        let d = &loaded.diagnostics[0];
        assert_eq!(d.level, Level::Warning);
        assert!(
            d.to_string()
                .starts_with("/run/vflag/vflag.conf.d: drop-ins here are ignored: \"20-x.conf\";"),
            "{d}"
        );
        // Alone, they are not configuration: the compatibility file is read instead.
        std::fs::remove_file(t.path().join("etc/vflag/vflag.conf")).unwrap();
        put(t.path(), "etc/sysconfig/sriov", "SRIOV_PFS=p5\n");
        assert_eq!(lags(&load(&Root::new(t.path()))), ["sysconfig"]);
    }
}
