//! Configuration: /etc/vflag/vflag.conf (+ drop-ins) or the seed's /etc/sysconfig/sriov → [`Plan`].

use crate::names::IfName;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod before;
pub mod dropins;
mod native;
mod sysconfig;
mod values;

pub use native::parse_native;
pub use sysconfig::parse_sysconfig;
pub use values::timespan;

/// eSwitch mode a LAG's PFs are put into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EswitchMode {
    /// VF-LAG: representors, OVS offload (default).
    Switchdev,
    /// Plain SR-IOV: VFs only, eSwitch left alone.
    Legacy,
}

/// Which network stack bonds the PFs (and is held back / handed the port after set-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkStack {
    Auto,
    // As spelled in vflag.conf (`network = NetworkManager`), also in `vflag plan --json`.
    #[serde(rename = "NetworkManager")]
    NetworkManager,
    SystemdNetworkd,
    NetworkScripts,
    /// vflag does not hold back or hand over the ports (something else bonds them).
    None,
}

/// One LAG: two ports of one NIC bonded together (or, with `legacy`, plain SR-IOV ports).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Lag {
    /// Section name, e.g. `bond0` for `[lag bond0]`; `sysconfig` for /etc/sysconfig/sriov.
    pub name: String,
    /// Where it was defined (for SourcePath= and messages).
    pub source: PathBuf,
    pub pfs: Vec<IfName>,
    /// VFs to create on each PF.
    pub vfs: u32,
    /// Combined channels on each PF (None: leave as is).
    pub pf_channels: Option<u32>,
    /// Combined channels on each representor (None: leave as is).
    pub representor_channels: Option<u32>,
    pub eswitch: EswitchMode,
    pub network_stack: NetworkStack,
    /// Units the late (rebind) stage must finish before, e.g. `docker.service`.
    pub before: Vec<String>,
    /// How long boot waits for a PF's net device to appear.
    #[serde(serialize_with = "seconds")]
    pub device_timeout: Duration,
    /// How long the late stage waits for the bond / LAG activation before giving up.
    #[serde(serialize_with = "seconds")]
    pub lag_timeout: Duration,
    /// Longest a stage may extend its unit's start timeout to while slow work progresses.
    #[serde(serialize_with = "seconds")]
    pub setup_timeout_max: Duration,
    /// Optional devlink params set in legacy mode before switchdev (mlx5).
    pub flow_steering_mode: Option<String>,
    pub lag_port_select_mode: Option<String>,
    /// Give VF representors short names `<pf>r<vf>` (off: the distribution's naming).
    pub representor_names: bool,
}

impl EswitchMode {
    /// As spelled in vflag.conf.
    pub fn as_str(self) -> &'static str {
        match self {
            EswitchMode::Switchdev => "switchdev",
            EswitchMode::Legacy => "legacy",
        }
    }
}

impl NetworkStack {
    /// As spelled in vflag.conf.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkStack::Auto => "auto",
            NetworkStack::NetworkManager => "NetworkManager",
            NetworkStack::SystemdNetworkd => "systemd-networkd",
            NetworkStack::NetworkScripts => "network-scripts",
            NetworkStack::None => "none",
        }
    }
}

/// Durations in `vflag plan --json` are seconds (a number), as the timeouts are written in
/// vflag.conf, not serde's `{"secs", "nanos"}`.
fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_nanos() == 0 {
        s.serialize_u64(d.as_secs())
    } else {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Lag {
    pub fn has_pf(&self, pf: &IfName) -> bool {
        self.pfs.contains(pf)
    }
}

/// Everything vflag should do this boot.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Plan {
    pub lags: Vec<Lag>,
}

impl Plan {
    /// The LAG a PF belongs to.
    pub fn lag_of(&self, pf: &IfName) -> Option<&Lag> {
        self.lags.iter().find(|l| l.has_pf(pf))
    }

    pub fn pfs(&self) -> impl Iterator<Item = (&Lag, &IfName)> {
        self.lags
            .iter()
            .flat_map(|l| l.pfs.iter().map(move |p| (l, p)))
    }
}

/// `[ovs]`: optional Open vSwitch settings (Kolla shares the db socket with the host).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ovs {
    /// Set `other_config:hw-offload=true` (vflag never sets it false).
    pub hw_offload: bool,
    pub db_socket: PathBuf,
}

impl Default for Ovs {
    fn default() -> Self {
        Ovs {
            hw_offload: false,
            db_socket: PathBuf::from("/run/openvswitch/db.sock"),
        }
    }
}

pub const MAIN_CONFIG: &str = "/etc/vflag/vflag.conf";
pub const SYSCONFIG: &str = "/etc/sysconfig/sriov";
/// Drop-in directories (`<dir>/vflag.conf.d/*.conf`), lowest priority first. Not /run/vflag:
/// see [`dropins::IGNORED_DIR`].
pub const DROPIN_DIRS: [&str; 2] = ["/usr/lib/vflag", "/etc/vflag"];

/// The seed's defaults (`mlnx-vflag-early`).
pub mod seed {
    pub const PFS: &str = "ens3f0 ens3f1";
    pub const VF_COUNT: u32 = 8;
    pub const PF_CHANNELS: u32 = 63;
    pub const VF_CHANNELS: u32 = 18;
}

/// From the start of the boot transaction: udev coldplug, module loading and mlx5 firmware
/// initialisation all come first on a big server.
pub const DEFAULT_DEVICE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_LAG_TIMEOUT: Duration = Duration::from_secs(30);
/// Ceiling of a unit's start timeout with extensions (slow switchdev/VF creation on mlx5).
pub const DEFAULT_SETUP_TIMEOUT_MAX: Duration = Duration::from_secs(300);
pub const DEFAULT_BEFORE: &str = "docker.service";
/// sriov_numvfs is a u16 in the PCI capability.
pub const MAX_VFS: u32 = 65535;
pub const MAX_CHANNELS: u32 = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warning,
    Error,
}

/// One problem found in the configuration, located as precisely as the source allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub level: Level,
    pub file: PathBuf,
    pub line: Option<usize>,
    pub section: Option<String>,
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ":")?;
        if let Some(s) = &self.section {
            write!(f, " [{s}]")?;
        }
        if let Some(k) = &self.key {
            write!(f, " {k}:")?;
        }
        write!(f, " {}", self.message)
    }
}

/// The result of reading all configuration: what to do, and what was wrong.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Loaded {
    pub plan: Plan,
    pub ovs: Ovs,
    pub diagnostics: Vec<Diagnostic>,
    /// `vflag=0` (or off/no/false) on the kernel command line.
    pub disabled_by_cmdline: bool,
    /// Files that were read, in order.
    pub sources: Vec<PathBuf>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.level == Level::Error)
    }
}

/// Read the kernel command line, vflag.conf + drop-ins or (only if neither exists)
/// /etc/sysconfig/sriov, all under `root`.
pub fn load(root: &crate::paths::Root) -> Loaded {
    let cmdline = crate::cmdline::Cmdline::read(root);
    let mut loaded = load_files(root);
    for v in &cmdline.invalid {
        loaded.diagnostics.push(Diagnostic {
            level: Level::Warning,
            file: PathBuf::from("/proc/cmdline"),
            line: None,
            section: None,
            key: Some("vflag".into()),
            message: format!("{v:?} is not a boolean (use vflag=0 or vflag=1); ignored"),
        });
    }
    if cmdline.disabled() {
        loaded.disabled_by_cmdline = true;
        loaded.plan = Plan::default();
    }
    loaded
}

fn load_files(root: &crate::paths::Root) -> Loaded {
    let mut loaded = Loaded::default();
    dropins::warn_ignored(root, &mut loaded.diagnostics);
    let mut files: Vec<PathBuf> = Vec::new();
    if root.path(MAIN_CONFIG).is_file() {
        files.push(PathBuf::from(MAIN_CONFIG));
    }
    files.extend(dropins::scan(root, &DROPIN_DIRS, &mut loaded.diagnostics));
    if files.is_empty() {
        if root.path(SYSCONFIG).is_file() {
            loaded.sources.push(PathBuf::from(SYSCONFIG));
            match std::fs::read_to_string(root.path(SYSCONFIG)) {
                Ok(text) => {
                    let (lag, diags) = parse_sysconfig(&text, Path::new(SYSCONFIG));
                    loaded.diagnostics.extend(diags);
                    loaded.plan.lags.extend(lag);
                }
                Err(e) => loaded.diagnostics.push(file_error(SYSCONFIG, e)),
            }
        }
        return loaded;
    }
    let mut texts = Vec::new();
    for file in files {
        match dropins::read(root, &file) {
            Ok(text) => texts.push((file, text)),
            Err(e) => {
                loaded.diagnostics.push(file_error(&file, e));
                loaded.sources.push(file);
            }
        }
    }
    let parsed = parse_native(&texts);
    loaded.diagnostics.extend(parsed.diagnostics);
    loaded.sources.extend(parsed.sources);
    loaded.plan = parsed.plan;
    loaded.ovs = parsed.ovs;
    loaded
}

fn file_error(file: impl AsRef<Path>, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic {
        level: Level::Error,
        file: file.as_ref().to_path_buf(),
        line: None,
        section: None,
        key: None,
        message: format!("cannot read: {e}"),
    }
}
