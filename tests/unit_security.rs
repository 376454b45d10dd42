//! The helper units run with the least privilege that works: `systemd-analyze security`
//! (offline, against the packaged templates) must rate each at most 5.0 ("OK"). The guest
//! scenarios prove the same units still do their job under these restrictions.

use std::path::Path;
use std::process::Command;

#[test]
fn units_exposure_at_most_5() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze missing in CI"
        );
        eprintln!("SKIP: systemd-analyze not installed");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let unit_dir = root.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&unit_dir).unwrap();
    for u in [
        "vflag@.service",
        "vflag-rebind@.service",
        "vflag-hotplug@.service",
        "vflag-ovs-offload.service",
        "vflag-prometheus.service",
    ] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("units").join(u);
        std::fs::copy(src, unit_dir.join(u)).unwrap();
    }
    for unit in [
        "vflag@ens3f0.service",
        "vflag-rebind@ens3f0.service",
        "vflag-hotplug@ens3f0.service",
        "vflag-ovs-offload.service",
        "vflag-prometheus.service",
    ] {
        let o = Command::new(analyze)
            .args(["security", "--offline=yes", "--threshold=50", "--no-pager"])
            .arg(format!("--root={}", root.path().display()))
            .arg(unit)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let overall = out
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or("(none)");
        println!("{unit}: {overall}");
        assert!(
            o.status.success(),
            "{unit} exposure above 5.0:\n{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let score: f32 = overall
            .split(':')
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(99.0);
        assert!(score <= 5.0, "{unit}: {overall}");
    }
}
