//! The generator in a sandbox like `ProtectSystem=strict`: every mount read-only except the
//! API file systems and its output directory (a private mount namespace made with unshare(1)).
//! It must still succeed and produce its units, i.e. it writes nothing anywhere else.

use std::path::Path;
use std::process::Command;

#[test]
fn generator_runs_with_only_its_output_writable() {
    if !Path::new("/usr/bin/unshare").exists() || !nix_is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "unshare/root needed in CI"
        );
        eprintln!("SKIP: needs root and unshare");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generator/two-lags/root");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Bind the output dir onto itself first (its own mount stays writable), then make every
    // other mount read-only, except /proc, /sys and /dev as ProtectSystem=strict does.
    let script = r#"
        set -e
        mount --make-rprivate /
        mount --bind "$OUT" "$OUT"
        findmnt -rno TARGET | while read -r m; do
            case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$OUT") continue;; esac
            mount -o remount,bind,ro "$m" 2>/dev/null || true
        done
        if touch "$(dirname "$OUT")/probe" 2>/dev/null; then echo "sandbox not read-only" >&2; exit 99; fi
        exec "$GEN" "$OUT" "$OUT" "$OUT"
    "#;
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .env("OUT", &out)
        .env("GEN", env!("CARGO_BIN_EXE_vflag-generator"))
        .env("VFLAG_ROOT", &root)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "generator failed in the sandbox: {err}");
    assert!(
        out.join("multi-user.target.wants/vflag@ens6f1.service")
            .is_symlink(),
        "{err}"
    );
    assert!(out
        .join("vflag-rebind@ens3f0.service.d/50-vflag.conf")
        .is_file());
}

fn nix_is_root() -> bool {
    // /proc/self/status "Uid:\treal\teffective..."; avoids a dependency for one call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
