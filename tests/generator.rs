//! Golden-directory tests of `vflag-generator` (zram-generator style): each
//! `tests/generator/<case>/root` is a re-rooted host (etc/, proc/cmdline, ...); the real
//! binary runs with VFLAG_ROOT on it, and its whole output tree and its log must equal
//! `<case>/expected` and `<case>/stderr`. `VFLAG_BLESS=1` rewrites the expectations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const GENERATOR: &str = env!("CARGO_BIN_EXE_vflag-generator");

/// Every file and symlink under `dir`: relative path → content or "-> target".
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if ft.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn run_generator(root: &Path, out: &Path) -> (i32, String) {
    let o = Command::new(GENERATOR)
        .args([out, out, out])
        .env("VFLAG_ROOT", root)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generator");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("root").is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn golden_directories() {
    let cases = cases();
    assert!(cases.len() >= 8, "golden cases missing: {cases:?}");
    let bless = std::env::var_os("VFLAG_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let out = tempfile::tempdir().unwrap();
        let root_before = tree(&case.join("root"));
        let (code, stderr) = run_generator(&case.join("root"), out.path());
        assert_eq!(
            code,
            0,
            "{}: a config problem must never fail the boot",
            case.display()
        );
        assert_eq!(
            tree(&case.join("root")),
            root_before,
            "{}: generator wrote into the root",
            case.display()
        );
        let expected_dir = case.join("expected");
        if bless {
            let _ = std::fs::remove_dir_all(&expected_dir);
            copy_tree(out.path(), &expected_dir);
            std::fs::write(case.join("stderr"), &stderr).unwrap();
            continue;
        }
        let got = tree(out.path());
        let want = tree(&expected_dir);
        if got != want {
            failures.push(format!(
                "{}: output tree differs\n got: {got:#?}\nwant: {want:#?}",
                case.display()
            ));
        }
        let want_log = std::fs::read_to_string(case.join("stderr")).unwrap_or_default();
        if stderr != want_log {
            failures.push(format!(
                "{}: log differs\n got: {stderr}\nwant: {want_log}",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `systemd-analyze`, or None where it is not installed (outside CI only).
fn analyze() -> Option<&'static Path> {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze missing in CI"
        );
        eprintln!("SKIP: systemd-analyze not installed");
        return None;
    }
    Some(analyze)
}

/// Run the generator on `case_root` and load every generated instance in systemd's own parser,
/// together with the packaged templates and the host's systemd units
/// (`systemd-analyze verify --root`); panics on any complaint. Returns the units verified.
fn verify_generated(analyze: &Path, case_root: &Path) -> Vec<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sys = tempfile::tempdir().unwrap();
    let r = sys.path();
    let unit_dir = r.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&unit_dir).unwrap();
    for host_units in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        if Path::new(host_units).is_dir() {
            let _ = Command::new("cp")
                .args([
                    "-rn",
                    &format!("{host_units}/."),
                    unit_dir.to_str().unwrap(),
                ])
                .status();
        }
    }
    copy_tree(&repo.join("units"), &unit_dir);
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_vflag"), r.join("usr/bin/vflag")).unwrap();
    // The generator's normal dir has the same semantics as /etc/systemd/system for loading.
    let out = r.join("etc/systemd/system");
    std::fs::create_dir_all(&out).unwrap();
    run_generator(case_root, &out);
    let mut units: Vec<String> = tree(&out)
        .keys()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .filter(|n| (n.ends_with(".service") && n.contains('@')) || n.ends_with(".path"))
        .collect();
    // A path unit: its service too (what it starts).
    if units.iter().any(|u| u == "vflag-ovs-offload.path") {
        units.push("vflag-ovs-offload.service".into());
    }
    units.sort();
    units.dedup();
    if units.is_empty() {
        return units;
    }
    let o = Command::new(analyze)
        .args(["verify", "--man=no", &format!("--root={}", r.display())])
        .args(&units)
        .current_dir(r)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.trim().is_empty(),
        "{}: systemd-analyze verify {units:?}:\n{err}",
        case_root.display()
    );
    units
}

/// Every generated unit of every golden case loads cleanly in systemd's own parser.
#[test]
fn generated_units_pass_systemd_analyze_verify() {
    let Some(analyze) = analyze() else { return };
    let units: Vec<String> = cases()
        .iter()
        .flat_map(|case| verify_generated(analyze, &case.join("root")))
        .collect();
    let checked = units.len();
    let ovs_units = units
        .iter()
        .filter(|u| *u == "vflag-ovs-offload.path")
        .count();
    assert!(checked >= 10, "too few units verified: {checked}");
    assert!(
        ovs_units >= 2,
        "the ovs-offload cases' path units were not verified"
    );
}

/// The packaged path unit watches the socket that vflag.conf(5) documents as the default; the
/// generator writes a drop-in only for another one.
#[test]
fn packaged_path_unit_watches_the_default_socket() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("units/vflag-ovs-offload.path"),
    )
    .unwrap();
    let watched: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("PathExists="))
        .collect();
    let default = vflag::config::Ovs::default().db_socket;
    assert_eq!(watched, [default.to_str().unwrap()]);
}

/// A drop-in whose file name holds a newline and a directive: nothing of it reaches a unit
/// (config or generator refuses that LAG), the log has no line of its own for it, the other
/// LAG is generated and everything loads cleanly. (Not a golden case: such a file name does
/// not belong in git.)
#[test]
fn file_name_with_a_newline_injects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let conf_d = root.join("etc/vflag/vflag.conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/cmdline"), "ro\n").unwrap();
    std::fs::write(
        root.join("etc/vflag/vflag.conf"),
        "[lag bond0]\npfs = ens3f0 ens3f1\nvfs = 8\n",
    )
    .unwrap();
    // An unknown key too, so that the file is named in a config diagnostic.
    std::fs::write(
        conf_d.join("50-x\n[Service]\nExecStartPre=touch pwned\n#.conf"),
        "[lag evil]\npfs = ens6f0 ens6f1\nvfs = 4\ncolour = blue\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (code, stderr) = run_generator(&root, &out);
    assert_eq!(code, 0, "{stderr}");
    let files = tree(&out);
    for (path, text) in &files {
        for line in text.lines() {
            assert!(
                !line.starts_with("ExecStartPre")
                    && (!line.starts_with('#') || line.starts_with("# Generated")),
                "{}: {line}",
                path.display()
            );
        }
        assert!(
            !path.to_string_lossy().contains("ens6f"),
            "{}",
            path.display()
        );
    }
    assert!(files.contains_key(Path::new("vflag-rebind@ens3f1.service.d/50-vflag.conf")));
    assert!(
        stderr.contains("ExecStartPre"),
        "the file is not named: {stderr}"
    );
    for line in stderr.lines() {
        assert!(
            line.starts_with("vflag-generator: "),
            "log line of its own: {line:?}"
        );
    }
    if let Some(analyze) = analyze() {
        assert_eq!(verify_generated(analyze, &root).len(), 4);
    }
}

#[test]
fn usage_errors() {
    let o = Command::new(GENERATOR).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage: vflag-generator"));
    let o = Command::new(GENERATOR).args(["a", "b"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unwritable_output_is_an_error() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generator/native/root");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let (code, stderr) = run_generator(&root, &file);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot write units"), "{stderr}");
}

#[test]
fn writes_only_into_its_output_dir() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generator/two-lags/root");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("normal");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(dir.path().join("early")).unwrap();
    std::fs::create_dir(dir.path().join("late")).unwrap();
    let o = Command::new(GENERATOR)
        .args([&out, &dir.path().join("early"), &dir.path().join("late")])
        .env("VFLAG_ROOT", &root)
        .output()
        .unwrap();
    assert!(o.status.success());
    let all = tree(dir.path());
    assert!(!all.is_empty());
    for p in all.keys() {
        assert!(
            p.starts_with("normal"),
            "wrote outside the normal dir: {}",
            p.display()
        );
    }
}
