//! `vflag-generator normal-dir [early-dir late-dir]`: systemd runs this at boot and at every
//! daemon-reload. It logs to /dev/kmsg (the journal is not up yet), falls back to stderr, and
//! exits 0 on any configuration problem so that a bad vflag config never fails the boot.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use vflag::paths::Root;

const USAGE: &str = "usage: vflag-generator NORMAL-DIR [EARLY-DIR LATE-DIR]";

fn log(root: &Root, priority: u8, msg: &str) {
    // Messages quote file and LAG names: a control character in one must not start a record
    // (or a journal line, from stderr) of its own.
    let mut safe = String::with_capacity(msg.len());
    for c in msg.chars() {
        if c.is_control() {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    // <N> is the syslog priority for the kernel log; one write per record.
    let line = format!(
        "<{priority}>vflag-generator[{}]: {safe}\n",
        std::process::id()
    );
    let sent = std::fs::OpenOptions::new()
        .write(true)
        .open(root.path("/dev/kmsg"))
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if sent.is_err() {
        eprintln!("vflag-generator: {safe}");
    }
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.len() != 1 && args.len() != 3 {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let root = Root::from_env();
    let loaded = vflag::config::load(&root);
    let out = vflag::generator::units(&loaded, &root);
    for line in &out.log {
        log(&root, 4, line);
    }
    if let Err(e) = vflag::generator::write(&args[0], &out.entries) {
        log(
            &root,
            3,
            &format!("cannot write units to {}: {e}", args[0].display()),
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
