//! The kernel-log parser against fixture logs of every mlx5 LAG format (see
//! tests/fixtures/kernlog/README.md for which lines are real captures and which are constructed).

use std::path::PathBuf;

use vflag::kernlog::{self, LagEventKind, LagFailure, LagReport, LagState, MapChange, PortMap};
use vflag::paths::Root;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kernlog")
        .join(name)
}

fn lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn report(name: &str) -> LagReport {
    kernlog::parse_lag(&lines(name))
}

fn pm(pairs: &[(u8, u8)]) -> Vec<PortMap> {
    pairs
        .iter()
        .map(|&(port, to)| PortMap { port, to })
        .collect()
}

/// ports, active_ports, shared_fdb, mode, single_fdb, since, remaps
type ActiveView = (
    Vec<PortMap>,
    Option<Vec<u8>>,
    Option<bool>,
    Option<String>,
    bool,
    kernlog::Stamp,
    u32,
);

/// Unpack an Active state or fail with the state seen.
fn active(r: &LagReport, pci: &str) -> ActiveView {
    let d = r
        .devices
        .get(pci)
        .unwrap_or_else(|| panic!("{pci} missing in {r:#?}"));
    match &d.state {
        LagState::Active {
            ports,
            active_ports,
            shared_fdb,
            mode,
            single_fdb,
            since,
            remaps,
        } => (
            ports.clone(),
            active_ports.clone(),
            *shared_fdb,
            mode.clone(),
            *single_fdb,
            *since,
            *remaps,
        ),
        other => panic!("{pci}: expected active, got {other:?}"),
    }
}

#[test]
fn seed_lines_oldest_format() {
    let r = report("seed-dmesg.txt");
    assert_eq!(r.devices.len(), 1);
    let (ports, active_ports, shared_fdb, mode, single_fdb, since, remaps) =
        active(&r, "0000:37:00.0");
    assert_eq!(
        ports,
        pm(&[(1, 1), (2, 2)]),
        "latest map is the last modify line"
    );
    assert_eq!(active_ports, None);
    assert_eq!((shared_fdb, mode, single_fdb), (None, None, false));
    assert_eq!(since.usec, Some(44_064_025), "created by the first line");
    assert_eq!(remaps, 3);
    let d = &r.devices["0000:37:00.0"];
    assert_eq!(d.events, 4);
    assert_eq!(d.last_event.at.usec, Some(46_591_272));
    assert!(matches!(
        d.last_event.kind,
        LagEventKind::Map {
            change: MapChange::Modify,
            ..
        }
    ));
    // The second PF of the same NIC finds the pair's entry.
    assert_eq!(
        r.for_pf("0000:37:00.1").map(|d| d.device.as_str()),
        Some("0000:37:00.0")
    );
    assert!(r.for_pf("0000:38:00.1").is_none());
}

#[test]
fn shared_fdb_format_and_single_fdb() {
    let r = report("shared-fdb-dmesg.txt");
    assert_eq!(
        r.devices.keys().collect::<Vec<_>>(),
        vec!["0000:5e:00.0"],
        "E-Switch and bond lines are not LAG events"
    );
    let (ports, _, shared_fdb, mode, single_fdb, since, remaps) = active(&r, "0000:5e:00.0");
    assert_eq!(ports, pm(&[(1, 1), (2, 1)]));
    assert_eq!(shared_fdb, Some(true));
    assert_eq!(mode, None);
    assert!(single_fdb);
    assert_eq!(since.usec, Some(14_310_042));
    assert_eq!(remaps, 1);
}

#[test]
fn shared_fdb_mode_kmsg_records() {
    let r = report("shared-fdb-mode-kmsg.txt");
    assert_eq!(r.devices.len(), 1);
    let (ports, _, shared_fdb, mode, single_fdb, since, remaps) = active(&r, "0000:3b:00.0");
    assert_eq!(ports, pm(&[(1, 2), (2, 2)]));
    assert_eq!(shared_fdb, Some(true));
    assert_eq!(mode.as_deref(), Some("hash"));
    assert!(single_fdb);
    assert_eq!(since.seq, Some(1461));
    assert_eq!(since.usec, Some(10_412_803));
    assert_eq!(remaps, 1);
    assert_eq!(r.devices["0000:3b:00.0"].last_event.at.seq, Some(1470));
}

#[test]
fn multiline_map_is_grouped() {
    let events = kernlog::parse_events(&lines("multiline-kmsg.txt"));
    let maps: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            LagEventKind::Map { ports, change, .. } => Some((e.at.seq, *change, ports.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        maps,
        vec![
            (Some(2210), MapChange::Create, pm(&[(1, 1), (2, 2)])),
            (Some(2301), MapChange::Modify, pm(&[(1, 2), (2, 2)])),
        ]
    );
    let r = kernlog::fold_events(events);
    let (ports, _, shared_fdb, mode, single_fdb, since, remaps) = active(&r, "0000:08:00.0");
    assert_eq!(ports, pm(&[(1, 2), (2, 2)]));
    assert_eq!(shared_fdb, Some(true));
    assert_eq!(mode.as_deref(), Some("queue_affinity"));
    assert!(single_fdb);
    assert_eq!(
        since.seq,
        Some(2210),
        "creation is the map before the shared_fdb line"
    );
    assert_eq!(remaps, 1);
}

#[test]
fn multiline_map_at_end_of_input_is_not_lost() {
    let l = lines("multiline-kmsg.txt");
    // Cut right after the first group's second port record (and its dictionary lines).
    let cut = l.iter().position(|x| x.contains("port 2:2")).unwrap() + 3;
    let r = kernlog::parse_lag(&l[..cut]);
    let (ports, _, shared_fdb, ..) = active(&r, "0000:08:00.0");
    assert_eq!(ports, pm(&[(1, 1), (2, 2)]));
    assert_eq!(shared_fdb, None);
}

#[test]
fn newest_single_line_and_hash_active_ports() {
    let r = report("newest-journal.txt");
    assert_eq!(r.devices.len(), 2);
    let (ports, active_ports, shared_fdb, mode, single_fdb, since, remaps) =
        active(&r, "0000:af:00.0");
    assert_eq!(ports, pm(&[(1, 1), (2, 2)]));
    assert_eq!(active_ports, None);
    assert_eq!(shared_fdb, Some(true));
    assert_eq!(mode.as_deref(), Some("queue_affinity"));
    assert!(single_fdb);
    assert_eq!(
        since.line, 1,
        "journal lines carry no boot-relative time; the line orders them"
    );
    assert_eq!(since.usec, None);
    assert_eq!(remaps, 2);

    let (ports, active_ports, shared_fdb, mode, _, _, remaps) = active(&r, "0000:d8:00.0");
    assert!(ports.is_empty());
    assert_eq!(active_ports, Some(vec![2]), "port 1 went down");
    assert_eq!(shared_fdb, Some(true));
    assert_eq!(mode.as_deref(), Some("hash"));
    assert_eq!(remaps, 1);
}

#[test]
fn failed_creation_wins_over_the_map_printed_before_it() {
    let r = report("failed-kmsg.txt");
    let d = &r.devices["0000:37:00.0"];
    match &d.state {
        LagState::Failed { reason, at } => {
            // The last failure line is the activation failure that follows the create error.
            assert_eq!(*reason, LagFailure::ActivateVfLag);
            assert_eq!(at.seq, Some(883));
        }
        other => panic!("expected failed, got {other:?}"),
    }
    let events = kernlog::parse_events(&lines("failed-kmsg.txt"));
    assert!(events.iter().any(|e| e.kind
        == LagEventKind::Failure {
            reason: LagFailure::Create(-22)
        }));
    assert!(!LagFailure::ActivateVfLag.hint().is_empty());

    // A failed remap leaves the LAG up with its previous map, and is reported.
    let (ports, ..) = active(&r, "0000:3b:00.0");
    assert_eq!(ports, pm(&[(1, 1), (2, 2)]));
    let mf = r.devices["0000:3b:00.0"]
        .last_modify_failure
        .as_ref()
        .expect("modify failure kept");
    assert_eq!(mf.kind, LagEventKind::ModifyFailed { code: -5 });
}

#[test]
fn refusals_are_recognised_with_or_without_device() {
    let r = report("refused.txt");
    let reasons: Vec<_> = r
        .unattributed
        .iter()
        .map(|e| match &e.kind {
            LagEventKind::Failure { reason } => reason.clone(),
            k => panic!("unexpected {k:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        vec![LagFailure::TxTypeNotSupported, LagFailure::TooManyVfs]
    );
    match &r.devices["0000:41:00.0"].state {
        LagState::Failed { reason, at } => {
            assert_eq!(*reason, LagFailure::TxTypeNotSupported);
            assert_eq!(at.usec, Some(101_220_001));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_later_activation_clears_a_failure() {
    let mut l = lines("failed-kmsg.txt");
    l.push("[  120.000001] mlx5_core 0000:37:00.0: lag map port 1:1 port 2:2".into());
    let r = kernlog::parse_lag(&l);
    let (_, _, _, _, _, since, remaps) = active(&r, "0000:37:00.0");
    assert_eq!((since.usec, remaps), (Some(120_000_001), 0));
}

#[test]
fn all_fixtures_concatenated_keep_devices_apart() {
    let mut all = Vec::new();
    for f in [
        "seed-dmesg.txt",
        "shared-fdb-dmesg.txt",
        "shared-fdb-mode-kmsg.txt",
        "multiline-kmsg.txt",
        "newest-journal.txt",
    ] {
        all.extend(lines(f));
    }
    let r = kernlog::parse_lag(&all);
    let keys: Vec<_> = r.devices.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "0000:08:00.0",
            "0000:37:00.0",
            "0000:3b:00.0",
            "0000:5e:00.0",
            "0000:af:00.0",
            "0000:d8:00.0"
        ]
    );
    assert!(r.devices.values().all(|d| d.state.is_active()));
    // Serialises for `vflag status --json`.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["devices"]["0000:37:00.0"]["state"]["state"], "active");
}

#[test]
fn read_kmsg_through_root_on_a_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dev")).unwrap();
    std::fs::copy(fixture("multiline-kmsg.txt"), dir.path().join("dev/kmsg")).unwrap();
    let root = Root::new(dir.path());
    let got = kernlog::read_kmsg(&root).unwrap();
    assert_eq!(got, lines("multiline-kmsg.txt"));
    let r = kernlog::kmsg_lag_report(&root).unwrap();
    assert!(r.devices["0000:08:00.0"].state.is_active());
    // Missing /dev/kmsg is an error the caller can report, not a panic.
    let empty = tempfile::tempdir().unwrap();
    let err = kernlog::read_kmsg(&Root::new(empty.path())).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

/// The real /dev/kmsg: reading must return (EAGAIN at the end) instead of blocking.
#[test]
fn read_real_kmsg_does_not_block() {
    let root = Root::new("/");
    if !std::path::Path::new("/dev/kmsg").exists() {
        eprintln!("skipped: no /dev/kmsg on this host");
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(kernlog::read_kmsg(&root).map(|l| l.len()));
    });
    match rx.recv_timeout(std::time::Duration::from_secs(5)) {
        Ok(Ok(n)) => eprintln!("read {n} lines from /dev/kmsg"),
        Ok(Err(e)) => {
            eprintln!("/dev/kmsg not readable here ({e}); non-blocking read still returned")
        }
        Err(_) => panic!("read_kmsg blocked on /dev/kmsg for 5 s"),
    }
}

#[test]
fn debugfs_lag_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    assert_eq!(
        kernlog::read_debugfs_lag(&root, "0000:37:00.0").unwrap(),
        None
    );

    let lag = kernlog::debugfs_lag_dir(&root, "0000:37:00.0");
    std::fs::create_dir_all(&lag).unwrap();
    std::fs::write(lag.join("state"), "active\n").unwrap();
    std::fs::write(lag.join("type"), "switchdev\n").unwrap();
    std::fs::write(lag.join("port_sel_mode"), "queue_affinity\n").unwrap();
    std::fs::write(
        lag.join("flags"),
        "shared_fdb:on\nfdb_selection_mode:native\n",
    )
    .unwrap();
    std::fs::write(lag.join("members"), "0000:37:00.0\n0000:37:00.1\n").unwrap();
    let d = kernlog::read_debugfs_lag(&root, "0000:37:00.0")
        .unwrap()
        .unwrap();
    assert!(d.active);
    assert_eq!(d.lag_type.as_deref(), Some("switchdev"));
    assert_eq!(d.port_sel_mode.as_deref(), Some("queue_affinity"));
    assert_eq!(d.shared_fdb, Some(true));
    assert_eq!(d.members, vec!["0000:37:00.0", "0000:37:00.1"]);

    // Disabled: the other files refuse to be read on a real kernel; here they are absent.
    for f in ["type", "port_sel_mode", "flags"] {
        std::fs::remove_file(lag.join(f)).unwrap();
    }
    std::fs::write(lag.join("state"), "disabled\n").unwrap();
    let d = kernlog::read_debugfs_lag(&root, "0000:37:00.0")
        .unwrap()
        .unwrap();
    assert!(!d.active);
    assert_eq!((d.lag_type, d.shared_fdb), (None, None));

    std::fs::write(lag.join("state"), "bogus\n").unwrap();
    assert!(kernlog::read_debugfs_lag(&root, "0000:37:00.0").is_err());
}

#[test]
fn ovs_offload_errors_from_log() {
    let text = std::fs::read_to_string(fixture("ovs-vswitchd.log")).unwrap();
    let errs: Vec<_> = text
        .lines()
        .filter_map(kernlog::parse_ovs_offload_error)
        .collect();
    assert_eq!(errs.len(), 3);
    assert_eq!(errs[0].port, "bond0");
    assert_eq!(errs[0].reason, "Operation not supported");
    assert_eq!(
        errs[0].timestamp.as_deref(),
        Some("2020-03-19T11:42:17.028Z")
    );
    assert_eq!(errs[1].reason, "No such file or directory");
    assert_eq!(errs[1].port, "eth9");
    // syslog form: no OVS timestamp, module still found.
    assert_eq!(errs[2].timestamp, None);
    assert_eq!(errs[2].module.as_deref(), Some("dpif_netlink(handler224)"));
    assert_eq!(errs[2].port, "enp65s0f0np0pf0vf3");
}

#[test]
fn offload_errors_from_the_tail_of_a_log_file() {
    let log = fixture("ovs-vswitchd.log");
    assert_eq!(
        kernlog::read_ovs_offload_errors(&log, 1 << 20)
            .unwrap()
            .len(),
        3
    );
    // Only the tail: the last line alone (the cut first line is dropped, not misparsed).
    let last = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .len() as u64;
    let tail = kernlog::read_ovs_offload_errors(&log, last + 10).unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].port, "enp65s0f0np0pf0vf3");
    assert!(kernlog::read_ovs_offload_errors(fixture("no-such.log"), 100).is_err());
}

#[test]
fn old_kernel_error_prefix_with_pci_name() {
    let r = report("failed-old-dmesg.txt");
    match &r.devices["0000:5e:00.0"].state {
        LagState::Failed { reason, at } => {
            assert_eq!(*reason, LagFailure::Create(-5));
            assert_eq!(at.usec, Some(31_402_990));
        }
        other => panic!("expected failed, got {other:?}"),
    }
}
