//! Logging: structured journal entries when run by systemd (fields PF, VF, STEP, ...), plain
//! stderr otherwise; and sd_notify STATUS= lines for `systemctl status`.

use tracing_subscriber::prelude::*;

/// Under systemd (JOURNAL_STREAM is set for services whose output goes to the journal) log
/// natively to journald; elsewhere to stderr. Falls back to stderr if journald is absent.
pub fn init(verbose: bool) {
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald
                .with_syslog_identifier("vflag".into())
                .with_field_prefix(None);
            tracing_subscriber::registry()
                .with(journald.with_filter(filter))
                .init();
            return;
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false);
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .init();
}

/// Tell systemd a one-line status (shown by `systemctl status`); a no-op outside systemd.
pub fn status(line: &str) {
    use libsystemd::daemon::{notify, NotifyState};
    let _ = notify(false, &[NotifyState::Status(line.to_string())]);
}
