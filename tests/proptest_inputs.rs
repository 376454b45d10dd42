//! Property tests on hostile input: the config parsers never panic and always locate their
//! errors; unit-name escaping equals `systemd-escape`; the command-line parser keeps words and
//! lets the last `vflag=` win; the generator's glob matcher agrees with a plain recursive one.

use proptest::prelude::*;
use std::path::Path;
use std::process::Command;
use vflag::cmdline::Cmdline;
use vflag::config::{self, Level};
use vflag::generator::glob_match;
use vflag::names::IfName;
use vflag::paths::Root;

fn conf_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[lag bond0]".to_string()),
        Just("[ovs]".to_string()),
        "\\[[a-z ]{0,8}\\]?",
        "(pfs|vfs|pf-channels|eswitch|before|lag-timeout|device-timeout|x) ?= ?.{0,24}",
        ".{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes in vflag.conf: no panic, every diagnostic names the file, and every LAG that
    /// survives has valid, in-range values.
    #[test]
    fn native_config_never_panics(lines in prop::collection::vec(conf_line(), 0..12)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/vflag")).unwrap();
        std::fs::write(dir.path().join("etc/vflag/vflag.conf"), lines.join("\n")).unwrap();
        let loaded = config::load(&Root::new(dir.path()));
        for d in &loaded.diagnostics {
            prop_assert!(d.to_string().starts_with("/etc/vflag/vflag.conf"), "{d}");
        }
        for lag in &loaded.plan.lags {
            prop_assert!(!lag.pfs.is_empty() && lag.pfs.len() <= 2);
            prop_assert!(lag.vfs >= 1 && lag.vfs <= config::MAX_VFS);
        }
    }

    #[test]
    fn sysconfig_never_panics(text in ".{0,200}") {
        let (lag, diags) = config::parse_sysconfig(&text, Path::new(config::SYSCONFIG));
        if lag.is_none() {
            prop_assert!(diags.iter().any(|d| d.level == Level::Error));
        }
        for d in &diags {
            prop_assert!(d.to_string().starts_with("/etc/sysconfig/sriov"), "{d}");
        }
    }

    /// Numbers of any size, sign or script are either accepted in range or refused.
    #[test]
    fn vf_counts_in_range_or_refused(v in prop_oneof!["-?[0-9]{1,25}", "\\PC{0,6}"]) {
        let text = format!("SRIOV_VF_COUNT={v:?}\n").replace('\\', "");
        let (lag, _) = config::parse_sysconfig(&text, Path::new(config::SYSCONFIG));
        if let Some(lag) = lag {
            prop_assert!(lag.vfs >= 1 && lag.vfs <= config::MAX_VFS);
        }
    }

    #[test]
    fn cmdline_last_vflag_wins(words in prop::collection::vec("[a-z_]{1,6}(=[a-z0-9]{0,4})?", 0..8),
                               flags in prop::collection::vec(prop::bool::ANY, 0..4)) {
        let mut all = words.clone();
        for f in &flags {
            all.push(format!("vflag={}", if *f { "1" } else { "off" }));
        }
        let c = Cmdline::parse(&all.join("  "));
        prop_assert_eq!(&c.words, &all);
        prop_assert_eq!(c.disabled(), flags.last() == Some(&false));
    }
}

fn systemd_escape(args: &[&str]) -> Option<String> {
    let o = Command::new("systemd-escape").args(args).output().ok()?;
    Some(
        String::from_utf8(o.stdout)
            .ok()?
            .trim_end_matches('\n')
            .to_string(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The unit names the generator writes are exactly what systemd-escape produces.
    #[test]
    fn escaping_matches_systemd_escape(name in "[a-zA-Z0-9._@%+=,~!#\\\\-]{1,15}") {
        let Ok(pf) = IfName::new(&name) else { return Ok(()) };
        let Some(inst) = systemd_escape(&["--", &name]) else {
            prop_assert!(std::env::var_os("CI").is_none(), "systemd-escape missing in CI");
            return Ok(());
        };
        prop_assert_eq!(pf.unit_instance(), inst);
        let dev = systemd_escape(&["--path", "--suffix=device", "--", &format!("/sys/subsystem/net/devices/{name}")]).unwrap();
        prop_assert_eq!(pf.device_unit(), dev);
    }
}

/// Hostile instance names are refused before any path is built.
#[test]
fn hostile_names_refused() {
    for bad in [
        "..",
        ".",
        "../../x",
        "a/b",
        "0123456789abcdef",
        "",
        "a b",
        "a:b",
        "tab\there",
    ] {
        assert!(IfName::new(bad).is_err(), "{bad:?}");
    }
}

/// The obvious recursive matcher (exponential on many stars, fine on 8 bytes): the reference.
fn glob_reference(p: &[u8], n: &[u8]) -> bool {
    match (p.first(), n.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_reference(&p[1..], n) || (!n.is_empty() && glob_reference(p, &n[1..]))
        }
        (Some(b'?'), Some(_)) => glob_reference(&p[1..], &n[1..]),
        (Some(a), Some(b)) if a == b => glob_reference(&p[1..], &n[1..]),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A small alphabet so that matches are frequent; `*` and `?` also appear in names.
    #[test]
    fn glob_match_agrees_with_reference(pattern in "[ab*?]{0,8}", name in "[ab*?]{0,8}") {
        prop_assert_eq!(
            glob_match(&pattern, &name),
            glob_reference(pattern.as_bytes(), name.as_bytes()),
            "pattern {:?} name {:?}", pattern, name
        );
    }
}
