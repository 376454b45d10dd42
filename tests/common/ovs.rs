//! A real ovsdb-server (and ovs-vswitchd with the dummy datapath) for the host tests, shared by
//! tests/ovsdb_real.rs and tests/status_ovs_real.rs.
//!
//! Open vSwitch binaries come from `tests/setup-ovs.sh` (Debian's packages unpacked with
//! `dpkg -x`, nothing installed): `VFLAG_OVS_DIR=<dir>` if set, else a cache that
//! `setup-ovs.sh --check` finds, else (only with `CI=true`) `setup-ovs.sh` is run to prepare
//! it, else a system-wide install. With `CI=true` and no binaries the OVS tests FAIL; locally
//! they are skipped with a printed reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vflag::ovsdb::OvsdbClient;

/// Bound for one client call in these tests.
pub const T: Duration = Duration::from_secs(5);
/// Bound for a daemon to come up (generous: CI machines are busy).
pub const STARTUP: Duration = Duration::from_secs(20);

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// An unpacked (or installed) Open vSwitch tree.
pub struct Ovs {
    root: PathBuf,
}

impl Ovs {
    fn has_binaries(root: &Path) -> bool {
        [
            "usr/sbin/ovsdb-server",
            "usr/bin/ovsdb-tool",
            "usr/bin/ovs-vsctl",
            "usr/share/openvswitch/vswitch.ovsschema",
        ]
        .iter()
        .all(|b| root.join(b).is_file())
    }

    /// The unpacked tree's own libraries (e.g. libxdp1, which a stock host lacks).
    fn ld_library_path(&self) -> String {
        let mut dirs = Vec::new();
        for base in ["usr/lib", "lib"] {
            if let Ok(rd) = std::fs::read_dir(self.root.join(base)) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().ends_with("-linux-gnu") {
                        dirs.push(e.path().display().to_string());
                    }
                }
            }
        }
        dirs.join(":")
    }

    pub fn schema(&self) -> PathBuf {
        self.root.join("usr/share/openvswitch/vswitch.ovsschema")
    }

    fn vswitchd(&self) -> PathBuf {
        // Debian keeps the daemon out of PATH.
        let deb = self.root.join("usr/lib/openvswitch-switch/ovs-vswitchd");
        if deb.is_file() {
            deb
        } else {
            self.root.join("usr/sbin/ovs-vswitchd")
        }
    }

    /// A command for an OVS program, with the environment pointed at `rundir` (never at the
    /// host's /run/openvswitch or /etc/openvswitch).
    fn cmd(&self, prog: &Path, rundir: &Path) -> Command {
        let mut c = Command::new(prog);
        c.env("LD_LIBRARY_PATH", self.ld_library_path())
            .env("OVS_RUNDIR", rundir)
            .env("OVS_DBDIR", rundir)
            .env("OVS_LOGDIR", rundir)
            .env("OVS_SYSCONFDIR", rundir)
            .env("OVS_PKGDATADIR", self.root.join("usr/share/openvswitch"))
            .stdin(Stdio::null());
        c
    }

    /// Runs `prog` (relative to the tree) to completion; its stdout, or a panic on failure.
    pub fn run(&self, prog: &str, rundir: &Path, args: &[&str]) -> String {
        let out = self
            .cmd(&self.root.join(prog), rundir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{prog}: {e}"));
        assert!(
            out.status.success(),
            "{prog} {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn setup_script(args: &[&str]) -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(manifest_dir().join("tests/setup-ovs.sh"))
        .args(args)
        // Preparing (no args) may download for a while: show its progress.
        .stderr(if args.is_empty() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

fn find_ovs() -> Result<Ovs, String> {
    if let Some(dir) = std::env::var_os("VFLAG_OVS_DIR").filter(|d| !d.is_empty()) {
        let root = PathBuf::from(dir);
        // An explicit choice that is wrong is an error, not a reason to look elsewhere.
        return if Ovs::has_binaries(&root) {
            Ok(Ovs { root })
        } else {
            Err(format!(
                "VFLAG_OVS_DIR={} holds no OVS binaries",
                root.display()
            ))
        };
    }
    if let Some(root) = setup_script(&["--check"]).filter(|r| Ovs::has_binaries(r)) {
        return Ok(Ovs { root });
    }
    // Only CI downloads on its own; a developer's `cargo test` never touches apt.
    if in_ci() {
        if let Some(root) = setup_script(&[]).filter(|r| Ovs::has_binaries(r)) {
            return Ok(Ovs { root });
        }
    }
    if Ovs::has_binaries(Path::new("/")) {
        return Ok(Ovs { root: "/".into() });
    }
    Err("no Open vSwitch binaries: run `tests/setup-ovs.sh` (or set VFLAG_OVS_DIR)".into())
}

/// The OVS tree, or `None` (locally) to skip; panics in CI, so a CI run without OVS fails
/// instead of passing with the OVS tests silently skipped.
pub fn ovs() -> Option<&'static Ovs> {
    // Looked up once per test binary: `setup-ovs.sh` may download.
    static OVS: OnceLock<Result<Ovs, String>> = OnceLock::new();
    match OVS.get_or_init(find_ovs) {
        Ok(o) => Some(o),
        Err(why) if in_ci() => panic!("CI=true but the OVS tests cannot run: {why}"),
        Err(why) => {
            eprintln!("SKIPPED (not in CI): {why}");
            None
        }
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !ok() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private ovsdb-server (and optionally ovs-vswitchd) under a temporary fake root, with
/// everything in `<root>/run/openvswitch` (where vflag looks under that root); killed on drop.
pub struct Server {
    ovs: &'static Ovs,
    root: tempfile::TempDir,
    children: Vec<Child>,
}

impl Server {
    pub fn start(ovs: &'static Ovs) -> Server {
        // In /tmp, not $TMPDIR: unix socket paths are limited to 108 bytes.
        let root = tempfile::Builder::new()
            .prefix("vflag-ovs")
            .tempdir_in("/tmp")
            .unwrap();
        let mut s = Server {
            ovs,
            root,
            children: vec![],
        };
        let rundir = s.rundir();
        std::fs::create_dir_all(&rundir).unwrap();
        let db = rundir.join("conf.db");
        ovs.run(
            "usr/bin/ovsdb-tool",
            &rundir,
            &[
                "create",
                db.to_str().unwrap(),
                ovs.schema().to_str().unwrap(),
            ],
        );
        let child = ovs
            .cmd(&ovs.root.join("usr/sbin/ovsdb-server"), &rundir)
            .arg(&db)
            .arg(format!("--remote=punix:{}", s.sock().display()))
            .arg(format!("--unixctl={}", s.ctl().display()))
            .arg(format!(
                "--log-file={}",
                rundir.join("ovsdb-server.log").display()
            ))
            .arg("--no-chdir")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ovsdb-server");
        s.children.push(child);
        // The database socket and the control socket appear one after the other.
        wait_for("ovsdb-server sockets", STARTUP, || {
            std::os::unix::net::UnixStream::connect(s.sock()).is_ok() && s.ctl().exists()
        });
        s
    }

    /// The fake root (for `Root::new`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `<root>/run/openvswitch`: database, sockets, pidfile and logs.
    pub fn rundir(&self) -> PathBuf {
        self.root.path().join("run/openvswitch")
    }

    pub fn sock(&self) -> PathBuf {
        self.rundir().join("db.sock")
    }

    /// ovsdb-server's control (unixctl) socket.
    pub fn ctl(&self) -> PathBuf {
        self.rundir().join("ovsdb-server.ctl")
    }

    /// ovs-vsctl as an independent reader/writer of the same database; trimmed stdout.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.sock().display());
        let mut all = vec![db.as_str(), "--timeout=10"];
        if self.children.len() == 1 {
            all.push("--no-wait"); // no ovs-vswitchd to wait for
        }
        all.extend_from_slice(args);
        self.ovs
            .run("usr/bin/ovs-vsctl", &self.rundir(), &all)
            .trim()
            .to_string()
    }

    pub fn client(&self) -> OvsdbClient {
        OvsdbClient::connect(self.sock(), T).expect("connect to test ovsdb-server")
    }

    /// Start ovs-vswitchd against this database with the dummy datapath (no kernel module).
    pub fn start_vswitchd(&mut self) {
        let rundir = self.rundir();
        let child = self
            .ovs
            .cmd(&self.ovs.vswitchd(), &rundir)
            .arg(format!("unix:{}", self.sock().display()))
            .arg("--enable-dummy=override")
            .arg("--disable-system")
            .arg(format!(
                "--pidfile={}",
                rundir.join("ovs-vswitchd.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                rundir.join("ovs-vswitchd.log").display()
            ))
            .arg("--no-chdir")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ovs-vswitchd");
        let ctl = rundir.join(format!("ovs-vswitchd.{}.ctl", child.id()));
        self.children.push(child);
        wait_for("ovs-vswitchd control socket and pidfile", STARTUP, || {
            ctl.exists() && rundir.join("ovs-vswitchd.pid").exists()
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
