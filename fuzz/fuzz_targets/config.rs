//! Fuzz the config parsers: arbitrary bytes as vflag.conf (split into a main file and a
//! drop-in at the first NUL) and as /etc/sysconfig/sriov. Nothing may panic, and every LAG that
//! survives must be valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use vflag::config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (main, dropin) = text.split_once('\0').unwrap_or((&text, ""));
    let loaded = config::parse_native(&[
        (PathBuf::from(config::MAIN_CONFIG), main.to_string()),
        (PathBuf::from("/etc/vflag/vflag.conf.d/10-x.conf"), dropin.to_string()),
    ]);
    for lag in &loaded.plan.lags {
        assert!(!lag.pfs.is_empty() && lag.pfs.len() <= 2);
        assert!((1..=config::MAX_VFS).contains(&lag.vfs));
    }
    let (lag, _) = config::parse_sysconfig(&text, Path::new(config::SYSCONFIG));
    if let Some(lag) = lag {
        assert!((1..=config::MAX_VFS).contains(&lag.vfs));
    }
});
