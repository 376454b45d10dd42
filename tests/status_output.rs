//! What operators' tools read from `vflag status`, `vflag check` and `vflag plan`, from the real
//! binary on test roots: the JSON v1 document (pinned key by key: a change here is a new
//! version), the Prometheus text read back by the exposition format's rules, `--output` and
//! the exit statuses (0 working, 1 degraded, 3 could not find out), the plan's spellings, and
//! a `--help` that lists what operators run.

#[path = "common/exposition.rs"]
mod exposition;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/generator")
        .join(name)
        .join("root")
}

fn vflag(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vflag"))
        .args(args)
        .env("VFLAG_ROOT", root)
        .env_remove("INVOCATION_ID")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Version 1, key by key and type by type.
fn assert_v1(doc: &Value) {
    assert_eq!(
        keys(doc),
        BTreeSet::from(["version", "degraded", "findings"]),
        "{doc:#}"
    );
    assert_eq!(doc["version"], 1);
    let findings = doc["findings"].as_array().expect("findings: an array");
    assert!(!findings.is_empty(), "{doc:#}");
    for f in findings {
        assert_eq!(
            keys(f),
            BTreeSet::from(["check", "pf", "outcome", "detail", "hint"]),
            "{f:#}"
        );
        assert!(f["check"].as_str().is_some_and(|c| !c.is_empty()), "{f:#}");
        assert!(f["pf"].is_string() || f["pf"].is_null(), "{f:#}");
        assert!(
            ["pass", "warn", "fail", "skip"].contains(&f["outcome"].as_str().unwrap_or("")),
            "{f:#}"
        );
        assert!(f["detail"].is_string(), "{f:#}");
        assert!(f["hint"].is_string() || f["hint"].is_null(), "{f:#}");
    }
    let failed = findings.iter().any(|f| f["outcome"] == "fail");
    assert_eq!(doc["degraded"], failed, "{doc:#}");
}

#[test]
fn status_and_check_json_v1() {
    // Configured PFs absent from the root: degraded.
    let o = vflag(&root("native"), &["status", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_v1(&doc);
    assert_eq!(doc["degraded"], true);
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "present" && f["pf"] == "ens3f0" && f["outcome"] == "fail"));

    let o = vflag(&root("native"), &["check", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_v1(&serde_json::from_str(&stdout(&o)).unwrap());

    // Nothing configured: not degraded, exit 0.
    let o = vflag(&root("nothing"), &["status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_v1(&doc);
    assert_eq!(doc["degraded"], false);

    // vflag=0: still the document, not a sentence.
    let o = vflag(&root("disabled-cmdline"), &["check", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_v1(&serde_json::from_str(&stdout(&o)).unwrap());
}

/// (check, pf) → (states written, value per state).
type States = BTreeMap<(String, String), BTreeMap<String, f64>>;

fn check_states(e: &exposition::Exposition) -> States {
    let mut out = States::new();
    for s in e.of("vflag_check_state") {
        assert_eq!(
            s.labels.keys().map(String::as_str).collect::<Vec<_>>(),
            ["check", "pf", "state"],
            "{s:?}"
        );
        out.entry((s.labels["check"].clone(), s.labels["pf"].clone()))
            .or_default()
            .insert(s.labels["state"].clone(), s.value);
    }
    out
}

#[test]
fn prometheus_output_file_follows_the_exposition_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vflag.prom");
    std::fs::write(&file, "vflag_degraded 0\n").unwrap(); // the last healthy state
    let file_arg = file.to_str().unwrap();
    let o = vflag(
        &root("native"),
        &["status", "--prometheus", "--output", file_arg],
    );
    // Degraded, and the file says so: written, exit 0 (the old recipe kept the stale file).
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let e = exposition::parse(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
    for family in ["vflag_check_state", "vflag_degraded", "vflag_lag_active"] {
        assert_eq!(
            e.types.get(family).map(String::as_str),
            Some("gauge"),
            "{text}"
        );
        assert!(e.help.contains_key(family), "{text}");
    }
    let states = check_states(&e);
    assert!(!states.is_empty(), "{text}");
    for (key, st) in &states {
        assert_eq!(
            st.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            BTreeSet::from(["pass", "warn", "fail", "skip"]),
            "{key:?}: {text}"
        );
        assert!(st.values().all(|v| *v == 0.0 || *v == 1.0), "{text}");
        assert_eq!(st.values().sum::<f64>(), 1.0, "{key:?}: {text}");
    }
    assert_eq!(states[&("present".into(), "ens3f0".into())]["fail"], 1.0);
    let degraded: Vec<f64> = e.of("vflag_degraded").map(|s| s.value).collect();
    assert_eq!(degraded, [1.0], "{text}");
    let active: BTreeMap<&str, f64> = e
        .of("vflag_lag_active")
        .map(|s| (s.labels["pf"].as_str(), s.value))
        .collect();
    assert_eq!(
        active,
        BTreeMap::from([("ens3f0", 0.0), ("ens3f1", 0.0)]),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "node_exporter runs as its own user");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a temporary file left"
    );

    // The same text on stdout, with the degraded exit status.
    let o = vflag(&root("native"), &["status", "--prometheus"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(stdout(&o), text);

    // Could not write: exit 3 ("unknown"), not 1 ("degraded"), and nothing left behind.
    let bad = dir.path().join("no-such-dir/vflag.prom");
    let o = vflag(
        &root("native"),
        &["status", "--prometheus", "--output", bad.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot write"),
        "{o:?}"
    );
    // A name vflag refuses: it could not find out either.
    let o = vflag(&root("native"), &["status", "a/b"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
}

/// The last set-up's time comes from the early stage's record in /run/vflag.
#[test]
fn prometheus_setup_time_from_the_stage_record() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("etc/vflag")).unwrap();
    std::fs::copy(
        root("native").join("etc/vflag/vflag.conf"),
        r.join("etc/vflag/vflag.conf"),
    )
    .unwrap();
    std::fs::create_dir_all(r.join("run/vflag")).unwrap();
    let rec = |done: bool| {
        format!(
            r#"{{"device":"pci/0000:37:00.0","autoprobe_before":true,"vfs":[],"setup_done":{done}}}"#
        )
    };
    std::fs::write(r.join("run/vflag/ens3f0.json"), rec(true)).unwrap();
    std::fs::write(r.join("run/vflag/ens3f1.json"), rec(false)).unwrap();
    let o = vflag(r, &["status", "--prometheus"]);
    let e = exposition::parse(&stdout(&o)).unwrap();
    let t: Vec<(&str, f64)> = e
        .of("vflag_setup_timestamp_seconds")
        .map(|s| (s.labels["pf"].as_str(), s.value))
        .collect();
    assert_eq!(t.len(), 1, "only the finished set-up: {t:?}");
    assert_eq!(t[0].0, "ens3f0");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - t[0].1).abs() < 300.0, "{t:?} vs {now}");
}

#[test]
fn plan_is_spelled_as_the_config_file() {
    let o = vflag(&root("native"), &["plan", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let lag = &p["plan"]["lags"][0];
    assert_eq!(lag["network_stack"], "NetworkManager");
    assert_eq!(lag["eswitch"], "switchdev");
    assert_eq!(lag["device_timeout"], 45, "{lag:#}");
    assert_eq!(lag["lag_timeout"], 60, "{lag:#}");
    let o = vflag(&root("native"), &["plan"]);
    let t = stdout(&o);
    assert!(t.contains("eSwitch:      switchdev\n"), "{t}");
    assert!(t.contains("network:      NetworkManager\n"), "{t}");
    assert!(t.contains("NIC wait:     45s, LAG wait: 60s"), "{t}");
    let o = vflag(&root("bad-values"), &["plan"]);
    let t = stdout(&o);
    assert!(t.starts_with("warning: ") && t.contains("\nerror: "), "{t}");
}

#[test]
fn help_lists_what_operators_run_and_hides_the_units_commands() {
    let o = vflag(&root("nothing"), &["--help"]);
    let help = stdout(&o);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        ["plan", "check", "status", "ovs-offload", "help"],
        "{help}"
    );
    // Still there for the units and udev.
    for c in ["setup", "setup-end", "rebind", "udev-import", "udev-name"] {
        let o = vflag(&root("nothing"), &[c, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{c}: {o:?}");
    }
    // Every argument and flag described.
    for c in ["plan", "check", "status"] {
        let h = stdout(&vflag(&root("nothing"), &[c, "--help"]));
        for l in h.lines().filter(|l| l.starts_with("  ")) {
            let t = l.trim();
            if t.starts_with('-') || t.starts_with('[') {
                assert!(
                    t.split("  ").filter(|w| !w.trim().is_empty()).count() >= 2,
                    "{c}: undescribed {t:?}\n{h}"
                );
            }
        }
    }
}
