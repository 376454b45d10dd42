//! Exit codes and messages of `vflag` for usage errors and hostile input: refused before any
//! path is built, nothing changed.

use std::path::Path;
use std::process::{Command, Output};

fn vflag(root: &str, args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/generator")
        .join(root)
        .join("root");
    Command::new(env!("CARGO_BIN_EXE_vflag"))
        .args(args)
        .env("VFLAG_ROOT", root)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn usage_errors_exit_2() {
    for args in [&[][..], &["frobnicate"], &["setup"], &["plan", "--bogus"]] {
        let o = vflag("native", args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

#[test]
fn hostile_instances_are_refused() {
    for stage in ["setup", "rebind", "check", "setup-end"] {
        for bad in ["../../x", "a/b", "..", "0123456789abcdef", "a b", ""] {
            let o = vflag("native", &[stage, bad]);
            assert_eq!(o.status.code(), Some(1), "{stage} {bad:?}: {}", text(&o));
            assert!(
                text(&o).contains("refusing instance"),
                "{stage} {bad:?}: {}",
                text(&o)
            );
        }
    }
}

#[test]
fn unconfigured_pf_is_refused() {
    let o = vflag("native", &["setup", "ens9"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("ens9 is not a PF of any configured LAG"),
        "{}",
        text(&o)
    );
}

#[test]
fn disabled_on_cmdline_does_nothing_successfully() {
    for args in [&["setup", "ens3f0"][..], &["rebind", "ens3f0"], &["check"]] {
        let o = vflag("disabled-cmdline", args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("disabled"), "{args:?}: {}", text(&o));
    }
    let o = vflag("disabled-cmdline", &["udev-import", "ens3f0"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty(), "{}", text(&o));
}

#[test]
fn plan_reports_errors_with_location() {
    let o = vflag("bad-values", &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("/etc/vflag/vflag.conf:8: [lag badcount] vfs:"),
        "{t}"
    );
    assert!(
        t.contains("[lag good] from /etc/vflag/vflag.conf"),
        "the good LAG survives: {t}"
    );
    let o = vflag("seed-sysconfig", &["plan", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["plan"]["lags"][0]["vfs"], 16);
    assert_eq!(v["plan"]["lags"][0]["pf_channels"], 18);
    assert_eq!(v["plan"]["lags"][0]["representor_channels"], 18);
    let o = vflag("nothing", &["plan"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("Nothing to do"));
}

#[test]
fn udev_import_names_the_unit() {
    let o = vflag("native", &["udev-import", "ens3f0"]);
    assert_eq!(o.status.code(), Some(0));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("VFLAG_PF=1") && t.contains("VFLAG_UNIT=vflag@ens3f0.service"),
        "{t}"
    );
    // A name that needs unit-name escaping is not started from udev (the boot units cover it).
    let o = vflag("escaping", &["udev-import", "en-p1s0"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("VFLAG_PF=1") && !t.contains("VFLAG_UNIT="),
        "{t}"
    );
    let o = vflag("native", &["udev-import", "eth0"]);
    assert!(o.stdout.is_empty());
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generator/two-lags/root");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vflag"))
        .args(["plan", "--json"])
        .env("VFLAG_ROOT", root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the only read end before vflag writes: its first write gets EPIPE.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
