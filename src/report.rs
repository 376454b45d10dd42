//! Rendering findings (of `vflag check` and `vflag status`) for people, for machines (JSON) and
//! for fleets (Prometheus text format, for node_exporter's textfile collector).

use crate::checks::{Finding, Outcome};
use std::fmt::Write as _;

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

/// Escape a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `vflag_check{check,pf,outcome}` (1 per finding) and `vflag_degraded`.
pub fn prometheus(findings: &[Finding]) -> String {
    let mut s = String::new();
    s.push_str("# HELP vflag_check One VF-LAG check: 1 if it passed (or does not apply), 0 if it warned or failed.\n");
    s.push_str("# TYPE vflag_check gauge\n");
    for f in findings {
        let pf = f.pf.as_ref().map(|p| p.as_str()).unwrap_or("");
        let outcome = serde_json::to_value(f.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let ok = matches!(f.outcome, Outcome::Pass | Outcome::Skip) as u8;
        let _ = writeln!(
            s,
            "vflag_check{{check=\"{}\",pf=\"{}\",outcome=\"{}\"}} {ok}",
            label(f.check),
            label(pf),
            outcome
        );
    }
    s.push_str("# HELP vflag_degraded 1 when any VF-LAG check failed on this host.\n");
    s.push_str("# TYPE vflag_degraded gauge\n");
    let _ = writeln!(s, "vflag_degraded {}", degraded(findings) as u8);
    s
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
        let p = prometheus(&fs);
        assert!(
            p.contains("vflag_check{check=\"vfs\",pf=\"ens3f0\",outcome=\"fail\"} 0"),
            "{p}"
        );
        assert!(
            p.contains("vflag_check{check=\"eswitch\",pf=\"ens3f0\",outcome=\"pass\"} 1"),
            "{p}"
        );
        assert!(p.ends_with("vflag_degraded 1\n"), "{p}");
        assert!(degraded(&fs));
        assert!(!degraded(&fs[..1]));
    }
}
