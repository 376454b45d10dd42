//! Rendering findings (of `vflag check` and `vflag status`) for people, for machines (JSON) and
//! for fleets (Prometheus text format, for node_exporter's textfile collector).

use crate::checks::{Finding, Outcome};
use crate::names::IfName;
use crate::paths::Root;
use crate::stages::State;
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

impl Outcome {
    fn mark(self) -> &'static str {
        match self {
            Outcome::Pass => "✓",
            Outcome::Warn => "!",
            Outcome::Fail => "✗",
            Outcome::Skip => "-",
        }
    }
}

/// VF-LAG is degraded when any finding failed.
pub fn degraded(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.outcome == Outcome::Fail)
}

/// One line per finding with ✓/✗, and the hint under every finding that is not a pass.
pub fn table(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        let pf = f.pf.as_ref().map(|p| p.as_str()).unwrap_or("");
        let _ = writeln!(
            s,
            "{} {:<16} {:<15} {}",
            f.outcome.mark(),
            f.check,
            pf,
            f.detail
        );
        if let (Some(h), true) = (&f.hint, f.outcome != Outcome::Pass) {
            let _ = writeln!(s, "  {:<32} → {h}", "");
        }
    }
    s
}

/// Version of the JSON document of `vflag status --json` and `vflag check --json`. Bumped on an
/// incompatible change (a key removed, renamed or retyped, a value's meaning changed); keys may
/// be added within a version. The schema is documented in vflag(8), "JSON OUTPUT".
pub const JSON_VERSION: u32 = 1;

/// The JSON document (version [`JSON_VERSION`]): its own types, so that a change inside
/// [`Finding`] cannot change the published shape unnoticed.
#[derive(serde::Serialize)]
struct Document<'a> {
    version: u32,
    degraded: bool,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(serde::Serialize)]
struct JsonFinding<'a> {
    check: &'a str,
    /// The PF, bond or other interface the finding is about; null for the host.
    pf: Option<&'a str>,
    outcome: Outcome,
    detail: &'a str,
    hint: Option<&'a str>,
}

/// `{"version": 1, "degraded": bool, "findings": [{check, pf, outcome, detail, hint}]}`.
pub fn json(findings: &[Finding]) -> String {
    let doc = Document {
        version: JSON_VERSION,
        degraded: degraded(findings),
        findings: findings
            .iter()
            .map(|f| JsonFinding {
                check: f.check,
                pf: f.pf.as_ref().map(|p| p.as_str()),
                outcome: f.outcome,
                detail: &f.detail,
                hint: f.hint.as_deref(),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("plain strings and numbers serialise");
    s.push('\n');
    s
}

/// Escape a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The states of `vflag_check_state`, in the order they are written.
const STATES: [Outcome; 4] = [Outcome::Pass, Outcome::Warn, Outcome::Fail, Outcome::Skip];

fn state_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Warn => "warn",
        Outcome::Fail => "fail",
        Outcome::Skip => "skip",
    }
}

fn family(s: &mut String, name: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} gauge");
}

/// Prometheus text format for node_exporter's textfile collector, after node_exporter's own
/// conventions: the labels of a series never change with the state (one series per check and
/// state, as `node_systemd_unit_state`), so a state change is a value change, not a new series.
///
/// - `vflag_check_state{check,pf,state}`: 1 for the check's current state, 0 for the 3 others;
/// - `vflag_degraded`: 1 when a check failed;
/// - `vflag_lag_active{pf}`: for each configured PF in `pfs`, 1 when its `lag` check passed (the
///   NIC reports VF-LAG active), else 0 (a missing PF included);
/// - `vflag_setup_timestamp_seconds{pf}`: when this boot's early stage finished on that PF
///   (absent until it has).
pub fn prometheus(findings: &[Finding], pfs: &[IfName], setups: &[(IfName, SystemTime)]) -> String {
    let mut s = String::new();
    family(
        &mut s,
        "vflag_check_state",
        "State of one VF-LAG check (pass, warn, fail, skip): 1 for the current state, 0 for the others.",
    );
    for f in findings {
        let pf = f.pf.as_ref().map(|p| p.as_str()).unwrap_or("");
        for st in STATES {
            let _ = writeln!(
                s,
                "vflag_check_state{{check=\"{}\",pf=\"{}\",state=\"{}\"}} {}",
                label(f.check),
                label(pf),
                state_name(st),
                (f.outcome == st) as u8
            );
        }
    }
    family(
        &mut s,
        "vflag_degraded",
        "1 when a VF-LAG check failed on this host (vflag status exits 1), else 0.",
    );
    let _ = writeln!(s, "vflag_degraded {}", degraded(findings) as u8);
    if !pfs.is_empty() {
        family(
            &mut s,
            "vflag_lag_active",
            "1 when the NIC reports VF-LAG active for this configured PF (its lag check passed), else 0.",
        );
        for pf in pfs {
            let active = findings.iter().any(|f| {
                f.check == "lag" && f.pf.as_ref() == Some(pf) && f.outcome == Outcome::Pass
            });
            let _ = writeln!(
                s,
                "vflag_lag_active{{pf=\"{}\"}} {}",
                label(pf.as_str()),
                active as u8
            );
        }
    }
    if !setups.is_empty() {
        family(
            &mut s,
            "vflag_setup_timestamp_seconds",
            "Time (Unix seconds) this boot's early stage finished setting up this PF.",
        );
        for (pf, t) in setups {
            let secs = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let _ = writeln!(
                s,
                "vflag_setup_timestamp_seconds{{pf=\"{}\"}} {secs}",
                label(pf.as_str())
            );
        }
    }
    s
}

/// When this boot's early stage finished on each PF: the time of its record in /run/vflag
/// (written last when the set-up is done; /run starts empty at every boot).
pub fn setup_times<'a>(
    root: &Root,
    pfs: impl IntoIterator<Item = &'a IfName>,
) -> Vec<(IfName, SystemTime)> {
    pfs.into_iter()
        .filter(|pf| State::read(root, pf).is_some_and(|s| s.setup_done))
        .filter_map(|pf| {
            let t = std::fs::metadata(root.state_file(pf))
                .ok()?
                .modified()
                .ok()?;
            Some((pf.clone(), t))
        })
        .collect()
}

/// Replace `path` with `text` atomically (a temporary file in the same directory, renamed), as
/// node_exporter's textfile collector needs: it never reads half a file. Readable by all
/// (node_exporter runs as its own user; the units' umask would make it 0600).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} is not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Not ending in .prom: the collector skips it while it is written.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::IfName;

    fn f(check: &'static str, outcome: Outcome) -> Finding {
        Finding {
            check,
            pf: Some(IfName::new("ens3f0").unwrap()),
            outcome,
            detail: "d \"q\"".into(),
            hint: Some("do x".into()),
        }
    }

    #[test]
    fn renders() {
        let fs = [f("eswitch", Outcome::Pass), f("vfs", Outcome::Fail)];
        let t = table(&fs);
        assert!(t.starts_with("✓ eswitch"), "{t}");
        assert!(t.contains("✗ vfs") && t.contains("→ do x"), "{t}");
        assert_eq!(
            t.matches("→").count(),
            1,
            "hint only under the failure: {t}"
        );
        assert!(degraded(&fs));
        assert!(!degraded(&fs[..1]));
    }

    fn samples(p: &str, metric: &str) -> Vec<String> {
        p.lines()
            .filter(|l| {
                l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} "))
            })
            .map(str::to_string)
            .collect()
    }

    /// A state change is a value change: the same series (labels) whatever the outcome, a
    /// warning is not written as a failure, and exactly one state is 1.
    #[test]
    fn prometheus_series_do_not_change_with_the_state() {
        let pf = IfName::new("ens3f0").unwrap();
        let render = |o: Outcome| prometheus(&[f("vfs", o)], std::slice::from_ref(&pf), &[]);
        let labels = |p: &str| -> Vec<String> {
            samples(p, "vflag_check_state")
                .iter()
                .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
                .collect()
        };
        let all: Vec<String> = STATES.iter().map(|o| render(*o)).collect();
        for p in &all {
            assert_eq!(labels(p), labels(&all[0]), "{p}");
            assert_eq!(samples(p, "vflag_check_state").len(), 4, "{p}");
        }
        let warn = &all[1];
        assert!(
            warn.contains("vflag_check_state{check=\"vfs\",pf=\"ens3f0\",state=\"warn\"} 1\n"),
            "{warn}"
        );
        assert!(
            warn.contains("vflag_check_state{check=\"vfs\",pf=\"ens3f0\",state=\"fail\"} 0\n"),
            "{warn}"
        );
        assert!(warn.contains("\nvflag_degraded 0\n"), "{warn}");
        assert!(all[2].contains("\nvflag_degraded 1\n"), "{}", all[2]);
    }

    #[test]
    fn prometheus_lag_active_and_setup_time() {
        let (a, b) = (
            IfName::new("ens3f0").unwrap(),
            IfName::new("ens3f1").unwrap(),
        );
        let mut lag = f("lag", Outcome::Pass);
        lag.pf = Some(b.clone());
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_765_000_000);
        let p = prometheus(&[lag], &[a.clone(), b.clone()], &[(b, t)]);
        assert_eq!(
            samples(&p, "vflag_lag_active"),
            [
                "vflag_lag_active{pf=\"ens3f0\"} 0",
                "vflag_lag_active{pf=\"ens3f1\"} 1"
            ],
            "{p}"
        );
        assert_eq!(
            samples(&p, "vflag_setup_timestamp_seconds"),
            ["vflag_setup_timestamp_seconds{pf=\"ens3f1\"} 1765000000"],
            "{p}"
        );
        assert!(p.contains("# TYPE vflag_lag_active gauge\n"), "{p}");
    }

    #[test]
    fn json_v1_document() {
        let mut host = f("iommu", Outcome::Warn);
        host.pf = None;
        host.hint = None;
        let v: serde_json::Value =
            serde_json::from_str(&json(&[f("vfs", Outcome::Fail), host])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "version": 1,
                "degraded": true,
                "findings": [
                    {"check": "vfs", "pf": "ens3f0", "outcome": "fail", "detail": "d \"q\"", "hint": "do x"},
                    {"check": "iommu", "pf": null, "outcome": "warn", "detail": "d \"q\"", "hint": null},
                ]
            })
        );
    }

    #[test]
    fn write_atomic_replaces_readable_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("vflag.prom");
        std::fs::write(&p, "old\n").unwrap();
        write_atomic(&p, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new\n");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(write_atomic(&d.path().join("no/such/dir.prom"), "x").is_err());
    }
}
