//! `vflag status` and `vflag ovs-offload enable` against a REAL ovsdb-server (and ovs-vswitchd
//! with the dummy datapath) started by this test under a fake root, at the path the config names
//! (`/run/openvswitch/db.sock` under the root). Binaries and server harness: tests/common/ovs.rs
//! (`VFLAG_OVS_DIR`, else `tests/setup-ovs.sh --check`, else (CI=true) `tests/setup-ovs.sh`;
//! with CI=true and no binaries the test FAILS, locally it is skipped).
//!
//! The fake root has no NIC: only the Open vSwitch rows are asserted here (netlink is never
//! asked under a fake root; the PF rows are covered by the unit tests in src/status/).

// Uses only part of the shared harness (no OVSDB client or unixctl of its own).
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::ovs::{ovs, Server};
use vflag::checks::{Finding, Outcome};
use vflag::config::{EswitchMode, Lag, Loaded, NetworkStack, Ovs, Plan};
use vflag::names::IfName;
use vflag::paths::Root;
use vflag::status;

fn loaded(hw_offload: bool) -> Loaded {
    Loaded {
        plan: Plan {
            lags: vec![Lag {
                name: "bond0".into(),
                source: "/etc/vflag/vflag.conf".into(),
                pfs: vec![
                    IfName::new("ens3f0").unwrap(),
                    IfName::new("ens3f1").unwrap(),
                ],
                vfs: 8,
                pf_channels: None,
                representor_channels: None,
                eswitch: EswitchMode::Switchdev,
                network_stack: NetworkStack::Auto,
                before: vec![],
                device_timeout: Duration::from_secs(30),
                lag_timeout: Duration::from_secs(30),
                setup_timeout_max: Duration::from_secs(300),
                flow_steering_mode: None,
                lag_port_select_mode: None,
                representor_names: false,
            }],
        },
        ovs: Ovs {
            hw_offload,
            db_socket: "/run/openvswitch/db.sock".into(),
        },
        ..Loaded::default()
    }
}

fn row<'a>(f: &'a [Finding], check: &str) -> &'a Finding {
    f.iter()
        .find(|x| x.check == check && x.pf.is_none())
        .unwrap_or_else(|| panic!("no {check} in {f:#?}"))
}

#[test]
// Long on purpose: one story told in order, each step building on the state the last one left.
fn status_sees_hw_offload_false_then_enable_makes_it_true() {
    let Some(ovs) = ovs() else { return };
    let mut srv = Server::start(ovs);
    srv.vsctl(&["init"]);
    srv.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "other_config:hw-offload=false",
        "other_config:max-idle=30000",
    ]);
    srv.start_vswitchd();
    let root = Root::new(srv.root());
    let cfg = loaded(true);

    let start = Instant::now();
    let f = status::collect(&root, &cfg, &[]);
    let took = start.elapsed();
    assert_eq!(row(&f, "ovs").outcome, Outcome::Pass, "{f:#?}");
    // ovs_version is not in this database (no start script ran): the daemon's answer is used.
    let v = row(&f, "ovs-version");
    assert_eq!(v.outcome, Outcome::Pass, "{v:?}");
    assert!(v.detail.ends_with("(ovs-vswitchd)"), "{v:?}");
    let h = row(&f, "ovs-hw-offload");
    assert_eq!(h.outcome, Outcome::Fail, "{h:?}");
    assert!(h
        .hint
        .as_deref()
        .unwrap()
        .contains("vflag ovs-offload enable"));
    // No bridge yet: ovs-vswitchd has no datapath to dump (a state, not an OVS error).
    let flows = row(&f, "ovs-flows");
    assert_eq!(flows.outcome, Outcome::Warn, "{flows:?}");
    assert_eq!(
        flows.detail,
        "ovs-vswitchd has no datapath: no Open vSwitch bridge exists"
    );
    assert!(
        took < Duration::from_secs(5),
        "status took {took:?} against a local OVS"
    );

    // A bridge with the bond in it (dummy datapath: no kernel module); the dump now answers.
    srv.vsctl(&[
        "add-br",
        "br-ex",
        "--",
        "set",
        "bridge",
        "br-ex",
        "datapath_type=dummy",
        "--",
        "add-port",
        "br-ex",
        "bond0",
    ]);
    let f = status::collect(&root, &cfg, &[]);
    assert_eq!(row(&f, "ovs").outcome, Outcome::Pass, "{f:#?}");
    let flows = row(&f, "ovs-flows");
    assert_eq!(flows.outcome, Outcome::Pass, "{flows:?}");
    assert!(flows.detail.starts_with("0 offloaded flows"), "{flows:?}");

    assert!(
        vflag::ovs_offload::enable(&root, &cfg).unwrap(),
        "false -> true"
    );
    // An independent reader (ovs-vsctl) sees it, and no other key was touched.
    assert_eq!(
        srv.vsctl(&["get", "Open_vSwitch", ".", "other_config:hw-offload"]),
        "\"true\""
    );
    assert_eq!(
        srv.vsctl(&["get", "Open_vSwitch", ".", "other_config:max-idle"]),
        "\"30000\""
    );
    let f = status::collect(&root, &cfg, &[]);
    let h = row(&f, "ovs-hw-offload");
    assert_eq!(h.outcome, Outcome::Pass, "{h:?}");
    assert_eq!(h.detail, "other_config:hw-offload=true");
    assert!(
        !vflag::ovs_offload::enable(&root, &cfg).unwrap(),
        "already true"
    );
}

#[test]
fn status_and_enable_without_ovs() {
    let root = tempfile::tempdir().unwrap();
    let root = Root::new(root.path());
    let f = status::collect(&root, &loaded(true), &[]);
    let o = row(&f, "ovs");
    assert_eq!(o.outcome, Outcome::Warn, "{o:?}");
    assert!(f.iter().all(|x| !x.check.starts_with("ovs-")), "{f:#?}");
    let e = vflag::ovs_offload::enable(&root, &loaded(true)).unwrap_err();
    assert!(e.is_absent(), "{e}");
}

#[test]
fn stale_socket_is_not_running_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let rd = dir.path().join("run/openvswitch");
    std::fs::create_dir_all(&rd).unwrap();
    // A socket file nobody listens on (as after a container stop).
    drop(std::os::unix::net::UnixListener::bind(rd.join("db.sock")).unwrap());
    let root = Root::new(dir.path());
    let start = Instant::now();
    let f = status::collect(&root, &loaded(true), &[]);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(row(&f, "ovs").outcome, Outcome::Warn, "{f:#?}");
}

/// `vflag ovs-offload enable --wait` (what vflag-ovs-offload.service runs when the database
/// socket appears): the socket exists before the database is initialised (no Open_vSwitch row
/// yet), so it waits for the row instead of failing, sets the key once, and a second run
/// changes nothing and says so. Without OVS at all the wait is bounded.
#[test]
fn enable_waits_for_the_database_then_is_idempotent() {
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_vflag");
    let Some(ovs) = ovs() else { return };
    let srv = Server::start(ovs);
    std::fs::create_dir_all(srv.root().join("etc/vflag")).unwrap();
    std::fs::write(
        srv.root().join("etc/vflag/vflag.conf"),
        "[ovs]\nhw-offload = yes\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(["ovs-offload", "enable"])
            .args(args)
            .env("VFLAG_ROOT", srv.root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = run(&["--wait", "30s"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "gave up on an uninitialised database instead of waiting"
    );
    srv.vsctl(&["init"]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("hw-offload set") && stdout.contains("restart ovs-vswitchd"),
        "{stdout}"
    );
    let get = || srv.vsctl(&["get", "Open_vSwitch", ".", "other_config:hw-offload"]);
    assert_eq!(get(), "\"true\"");

    let out = run(&[]).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("other_config:hw-offload is already true; nothing changed"),
        "{stdout}"
    );
    assert_eq!(get(), "\"true\"");

    // No Open vSwitch at all: fails after the wait, not before and not much later.
    let empty = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = Command::new(bin)
        .args(["ovs-offload", "enable", "--wait", "2s"])
        .env("VFLAG_ROOT", empty.path())
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(!out.status.success());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Open vSwitch absent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
