//! Configuration: /etc/vflag/vflag.conf (+ drop-ins) or the seed's /etc/sysconfig/sriov → [`Plan`].

use crate::names::IfName;
use std::path::PathBuf;
use std::time::Duration;

mod before;
pub mod dropins;

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

/// Parse native config texts (main file first, then drop-ins in order) without touching the
/// file system: the pure core of [`load`], also the fuzz target's entry point.
pub fn parse_native(files: &[(PathBuf, String)]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut merged = Merged::default();
    for (file, text) in files {
        merged.add(file, text, &mut loaded.diagnostics);
        loaded.sources.push(file.clone());
    }
    merged.finish(&mut loaded);
    loaded
}

use std::path::Path;

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

/// A key's value and where it was set (the last setting wins across files).
#[derive(Debug, Clone)]
struct Setting {
    value: String,
    file: PathBuf,
    line: Option<usize>,
}

/// A section's keys in order of first appearance, each with its winning setting.
type Keys = Vec<(String, Setting)>;

/// A section merged across the main file and drop-ins.
struct Section {
    name: String,
    /// The file that first defined it.
    file: PathBuf,
    keys: Keys,
    /// Errors found while merging (the header repeated within one file).
    problems: Vec<Diagnostic>,
}

/// Sections merged across the main file and drop-ins, in order of first appearance.
#[derive(Default)]
struct Merged {
    sections: Vec<Section>,
}

impl Merged {
    fn add(&mut self, file: &Path, text: &str, diags: &mut Vec<Diagnostic>) {
        let opt = ini::ParseOption {
            enabled_quote: true,
            enabled_escape: false,
            enabled_indented_mutiline_value: false,
            enabled_preserve_key_leading_whitespace: false,
        };
        let ini = match ini::Ini::load_from_str_opt(text, opt) {
            Ok(ini) => ini,
            Err(e) => {
                diags.push(Diagnostic {
                    level: Level::Error,
                    file: file.to_path_buf(),
                    line: Some(e.line + 1),
                    section: None,
                    key: None,
                    message: format!("syntax error: {}; this file is ignored", e.msg),
                });
                return;
            }
        };
        let lines = KeyLines::new(text);
        for (name, props) in ini.iter() {
            let Some(name) = name else {
                for (k, _) in props.iter() {
                    diags.push(Diagnostic {
                        level: Level::Warning,
                        file: file.to_path_buf(),
                        line: lines.find(None, k),
                        section: None,
                        key: Some(k.to_string()),
                        message:
                            "key outside any section is ignored; put it under [lag NAME] or [ovs]"
                                .into(),
                    });
                }
                continue;
            };
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            let section = self.section(&name, file);
            for (k, v) in props.iter() {
                let setting = Setting {
                    value: v.to_string(),
                    file: file.to_path_buf(),
                    line: lines.find(Some(&name), k),
                };
                match section.keys.iter_mut().find(|(key, _)| key == k) {
                    Some((_, s)) => *s = setting,
                    None => section.keys.push((k.to_string(), setting)),
                }
            }
        }
        for (name, at) in lines.repeated_headers() {
            let shown: Vec<String> = at.iter().map(usize::to_string).collect();
            self.section(&name, file).problems.push(Diagnostic {
                level: Level::Error,
                file: file.to_path_buf(),
                line: at.get(1).copied(),
                section: Some(name.clone()),
                key: None,
                message: format!(
                    "section repeated in this file (lines {}); write each section once per file \
                     (only a later drop-in file may override it)",
                    shown.join(", ")
                ),
            });
        }
    }

    /// The merged section `name`, created (first defined in `file`) if new.
    fn section(&mut self, name: &str, file: &Path) -> &mut Section {
        let idx = match self.sections.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name: name.to_string(),
                    file: file.to_path_buf(),
                    keys: Vec::new(),
                    problems: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[idx]
    }

    fn finish(self, loaded: &mut Loaded) {
        let mut owners = Owners::default();
        for section in self.sections {
            let mut p = SectionParser {
                section: &section.name,
                file: &section.file,
                keys: &section.keys,
                diags: section.problems,
            };
            if let Some(lag_name) = section.name.strip_prefix("lag ") {
                p.finish_lag(lag_name, &mut owners, loaded);
            } else if section.name == "ovs" {
                p.finish_ovs(loaded);
            } else {
                loaded.diagnostics.push(p.section_error(format!(
                    "unknown section [{}] is ignored; sections are [lag NAME] and [ovs]",
                    section.name
                )));
            }
        }
    }
}

/// Which LAG first named each PF, and whether that LAG is in the plan. A LAG skipped for its
/// errors still owns the PFs it names: a second LAG naming one is refused too, so a PF the
/// configuration names twice is never set up by whichever LAG happens to be valid.
#[derive(Default)]
struct Owners(Vec<(IfName, String, bool)>);

impl Owners {
    /// Why a LAG naming `pfs` cannot have them, if another LAG named one first.
    fn clash(&self, pfs: &[IfName]) -> Option<String> {
        let (pf, other, planned) = pfs
            .iter()
            .find_map(|pf| self.0.iter().find(|(p, _, _)| p == pf))?;
        Some(if *planned {
            format!(
                "PF {pf} is already in [lag {other}]; a PF belongs to one LAG; this LAG is skipped"
            )
        } else {
            format!(
                "PF {pf} is already in [lag {other}] (itself skipped); a PF belongs to one LAG, \
                 so this LAG is skipped too; name each PF in one LAG only"
            )
        })
    }

    fn claim(&mut self, pfs: &[IfName], lag: &str, planned: bool) {
        for pf in pfs {
            if !self.0.iter().any(|(p, _, _)| p == pf) {
                self.0.push((pf.clone(), lag.to_string(), planned));
            }
        }
    }
}

/// Finds the line of `key` in `[section]` of one file's text (rust-ini does not keep lines).
struct KeyLines<'a>(Vec<(Option<String>, &'a str)>);

impl<'a> KeyLines<'a> {
    fn new(text: &'a str) -> Self {
        let mut section = None;
        let mut out = Vec::new();
        for line in text.lines() {
            let t = line.trim();
            if let Some(s) = t.strip_prefix('[').and_then(|s| s.split(']').next()) {
                section = Some(s.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            out.push((section.clone(), t));
        }
        KeyLines(out)
    }

    /// Section headers that appear more than once, with their lines.
    fn repeated_headers(&self) -> Vec<(String, Vec<usize>)> {
        let mut seen: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, (s, t)) in self.0.iter().enumerate() {
            let Some(name) = s.as_ref().filter(|_| t.starts_with('[')) else {
                continue;
            };
            match seen.iter_mut().find(|(n, _)| n == name) {
                Some((_, at)) => at.push(i + 1),
                None => seen.push((name.clone(), vec![i + 1])),
            }
        }
        seen.retain(|(_, at)| at.len() > 1);
        seen
    }

    fn find(&self, section: Option<&str>, key: &str) -> Option<usize> {
        self.0
            .iter()
            .enumerate()
            .rev()
            .find(|(_, (s, t))| {
                s.as_deref() == section
                    && t.strip_prefix(key)
                        .is_some_and(|r| r.trim_start().starts_with(['=', ':']))
            })
            .map(|(i, _)| i + 1)
    }
}

struct SectionParser<'a> {
    section: &'a str,
    file: &'a Path,
    keys: &'a [(String, Setting)],
    diags: Vec<Diagnostic>,
}

const LAG_KEYS: &[&str] = &[
    "pfs",
    "vfs",
    "pf-channels",
    "representor-channels",
    "eswitch",
    "network-stack",
    "before",
    "device-timeout",
    "lag-timeout",
    "setup-timeout-max",
    "flow-steering-mode",
    "lag-port-select-mode",
    "representor-names",
];
const OVS_KEYS: &[&str] = &["hw-offload", "db-socket"];

impl SectionParser<'_> {
    /// Add the LAG to the plan, or say why it is skipped.
    fn finish_lag(&mut self, lag_name: &str, owners: &mut Owners, loaded: &mut Loaded) {
        let lag = self.lag(lag_name);
        let named = self.named_pfs();
        let clash = owners.clash(&named);
        let ok = clash.is_none() && !self.diags.iter().any(|d| d.level == Level::Error);
        owners.claim(&named, lag_name, ok);
        loaded.diagnostics.append(&mut self.diags);
        if let Some(why) = clash {
            loaded.diagnostics.push(self.section_error(why));
        } else if !ok {
            loaded.diagnostics.push(self.section_error(format!(
                "LAG {lag_name:?} is skipped because of the errors above; other LAGs are unaffected"
            )));
        } else {
            loaded.plan.lags.extend(lag);
        }
    }

    /// Every valid interface name in `pfs`, even if the value as a whole is not valid.
    fn named_pfs(&self) -> Vec<IfName> {
        self.get("pfs").map_or(Vec::new(), |s| {
            s.value
                .split_whitespace()
                .filter_map(|w| IfName::new(w).ok())
                .collect()
        })
    }

    fn finish_ovs(&mut self, loaded: &mut Loaded) {
        if self.diags.is_empty() {
            loaded.ovs = self.ovs();
        } else {
            self.diags.push(self.section_error(
                "[ovs] is ignored because of the errors above; its defaults apply (hw-offload = no)"
                    .into(),
            ));
        }
        loaded.diagnostics.append(&mut self.diags);
    }

    fn section_error(&self, message: String) -> Diagnostic {
        Diagnostic {
            level: Level::Error,
            file: self.file.to_path_buf(),
            line: None,
            section: Some(self.section.to_string()),
            key: None,
            message,
        }
    }

    fn get(&self, key: &str) -> Option<&Setting> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    fn diag(&mut self, level: Level, key: &str, s: &Setting, message: String) {
        self.diags.push(Diagnostic {
            level,
            file: s.file.clone(),
            line: s.line,
            section: Some(self.section.to_string()),
            key: Some(key.to_string()),
            message,
        });
    }

    fn unknown_keys(&mut self, known: &[&str]) {
        for (k, s) in self.keys {
            if !known.contains(&k.as_str()) {
                self.diag(
                    Level::Warning,
                    k,
                    s,
                    format!("unknown key is ignored; known keys: {}", known.join(", ")),
                );
            }
        }
    }

    /// Parse `key` with `f`, reporting `Err(allowed)` as an error; `Ok(None)` when absent.
    fn value<T>(&mut self, key: &str, f: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let s = self.get(key)?.clone();
        match f(s.value.trim()) {
            Ok(v) => Some(v),
            Err(allowed) => {
                self.diag(
                    Level::Error,
                    key,
                    &s,
                    format!("{:?} is not valid; {allowed}", s.value),
                );
                None
            }
        }
    }

    fn lag(&mut self, name: &str) -> Option<Lag> {
        self.unknown_keys(LAG_KEYS);
        if name.is_empty() || name.contains(char::is_whitespace) {
            self.diags.push(self.section_error(
                "a LAG section is named [lag NAME] with one word, e.g. [lag bond0]".into(),
            ));
        }
        let pfs = self.value("pfs", |v| {
            let pfs = parse_pfs(v)?;
            if pfs.len() > 2 {
                return Err("a LAG has one or two PFs (the two ports of one NIC); use one [lag] section per NIC".into());
            }
            Ok(pfs)
        });
        if self.get("pfs").is_none() {
            self.diags.push(self.section_error(
                "pfs: missing; list the LAG's PF interfaces, e.g. pfs = ens3f0 ens3f1".into(),
            ));
        }
        let lag = Lag {
            name: name.to_string(),
            source: self.file.to_path_buf(),
            pfs: pfs.unwrap_or_default(),
            vfs: self
                .value("vfs", |v| count(v, MAX_VFS))
                .unwrap_or(seed::VF_COUNT),
            pf_channels: self.value("pf-channels", |v| count(v, MAX_CHANNELS)),
            representor_channels: self.value("representor-channels", |v| count(v, MAX_CHANNELS)),
            eswitch: self
                .value("eswitch", parse_eswitch)
                .unwrap_or(EswitchMode::Switchdev),
            network_stack: self
                .value("network-stack", parse_stack)
                .unwrap_or(NetworkStack::Auto),
            before: self
                .value("before", parse_before)
                .unwrap_or_else(|| vec![DEFAULT_BEFORE.to_string()]),
            device_timeout: self
                .value("device-timeout", timespan)
                .unwrap_or(DEFAULT_DEVICE_TIMEOUT),
            lag_timeout: self
                .value("lag-timeout", timespan)
                .unwrap_or(DEFAULT_LAG_TIMEOUT),
            setup_timeout_max: self
                .value("setup-timeout-max", timespan)
                .unwrap_or(DEFAULT_SETUP_TIMEOUT_MAX),
            flow_steering_mode: self.value("flow-steering-mode", |v| {
                one_of(v, &["dmfs", "smfs", "hmfs"]).map(str::to_string)
            }),
            lag_port_select_mode: self.value("lag-port-select-mode", |v| {
                one_of(v, &["queue_affinity", "hash", "multiport_esw"]).map(str::to_string)
            }),
            representor_names: self.value("representor-names", yes_no).unwrap_or(false),
        };
        if lag.vfs > 64 && lag.eswitch == EswitchMode::Switchdev {
            let s = self.get("vfs").cloned();
            if let Some(s) = s {
                self.diag(Level::Warning, "vfs", &s, format!(
                    "{} VFs per PF: mlx5 does not activate VF-LAG with more than 64 VFs on a PF", lag.vfs));
            }
        }
        Some(lag)
    }

    fn ovs(&mut self) -> Ovs {
        self.unknown_keys(OVS_KEYS);
        let d = Ovs::default();
        Ovs {
            hw_offload: self.value("hw-offload", yes_no).unwrap_or(d.hw_offload),
            db_socket: self
                .value("db-socket", |v| {
                    if v.starts_with('/') {
                        Ok(PathBuf::from(v))
                    } else {
                        Err("expected an absolute path".into())
                    }
                })
                .unwrap_or(d.db_socket),
        }
    }
}

fn yes_no(v: &str) -> Result<bool, String> {
    crate::cmdline::parse_bool(v).ok_or_else(|| "expected yes or no".to_string())
}

fn parse_pfs(v: &str) -> Result<Vec<IfName>, String> {
    let mut pfs: Vec<IfName> = Vec::new();
    for w in v.split_whitespace() {
        let pf = IfName::configured(w).map_err(|e| format!("{e}"))?;
        if pfs.contains(&pf) {
            return Err(format!("{pf} is listed twice"));
        }
        pfs.push(pf);
    }
    if pfs.is_empty() {
        return Err("expected interface names separated by spaces".into());
    }
    Ok(pfs)
}

fn count(v: &str, max: u32) -> Result<u32, String> {
    let allowed = || format!("expected a whole number from 1 to {max}");
    let n: u64 = v.parse().map_err(|_| allowed())?;
    if n == 0 || n > max as u64 {
        return Err(allowed());
    }
    Ok(n as u32)
}

fn one_of<'a>(v: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(v))
        .copied()
        .ok_or_else(|| format!("expected one of: {}", allowed.join(", ")))
}

fn parse_eswitch(v: &str) -> Result<EswitchMode, String> {
    Ok(match one_of(v, &["switchdev", "legacy"])? {
        "switchdev" => EswitchMode::Switchdev,
        _ => EswitchMode::Legacy,
    })
}

fn parse_stack(v: &str) -> Result<NetworkStack, String> {
    Ok(
        match one_of(
            v,
            &[
                "auto",
                "NetworkManager",
                "systemd-networkd",
                "network-scripts",
                "none",
            ],
        )? {
            "auto" => NetworkStack::Auto,
            "NetworkManager" => NetworkStack::NetworkManager,
            "systemd-networkd" => NetworkStack::SystemdNetworkd,
            "network-scripts" => NetworkStack::NetworkScripts,
            _ => NetworkStack::None,
        },
    )
}

/// Unit names as systemd accepts them (`name.type`, `*`/`?` globs allowed for the generator to
/// expand, e.g. `kolla-*-container.service`).
fn parse_units(v: &str) -> Result<Vec<String>, String> {
    let allowed =
        "expected unit names separated by spaces, e.g. docker.service (globs * and ? allowed)";
    let units: Vec<String> = v.split_whitespace().map(str::to_string).collect();
    for u in &units {
        let (stem, suffix) = u.rsplit_once('.').ok_or(allowed)?;
        let good_suffix = [
            "service", "target", "socket", "mount", "path", "timer", "scope", "slice",
        ]
        .contains(&suffix);
        let good_stem = !stem.is_empty()
            && u.len() <= 255
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@*?".contains(c));
        if !good_suffix || !good_stem {
            return Err(format!("{u:?}: {allowed}"));
        }
    }
    Ok(units)
}

/// `before`: unit names (or globs), none of which the late stage itself starts after.
fn parse_before(v: &str) -> Result<Vec<String>, String> {
    let units = parse_units(v)?;
    match units.iter().find_map(|u| before::cycle(u)) {
        Some(why) => Err(format!(
            "{why}; Before= it would be an ordering cycle: name units that start after the \
             network is online, e.g. docker.service"
        )),
        None => Ok(units),
    }
}

/// A systemd-style time span: `30`, `30s`, `500ms`, `2min`, `1min 30s`; 1 s to 1 h.
pub fn timespan(v: &str) -> Result<Duration, String> {
    let allowed = || "expected a time span from 1s to 1h, e.g. 30s, 2min, 1min 30s".to_string();
    let mut total = Duration::ZERO;
    let mut rest = v.trim();
    if rest.is_empty() {
        return Err(allowed());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(allowed());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| allowed())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" | "msec" => 1,
            "" | "s" | "sec" | "second" | "seconds" => 1000,
            "m" | "min" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000,
            _ => return Err(allowed()),
        };
        total = total.saturating_add(Duration::from_millis(n.saturating_mul(ms)));
        rest = rest[unit_len..].trim_start();
    }
    if total < Duration::from_secs(1) || total > Duration::from_secs(3600) {
        return Err(allowed());
    }
    Ok(total)
}

/// The seed's `/etc/sysconfig/sriov`: shell assignments, sourced by bash. Variables it leaves
/// out — or sets empty, as `${VAR:-default}` treats them — take the seed's defaults. A line
/// vflag cannot read exactly as the shell would (an expansion, a command) skips the whole
/// set-up: a value that is there but refused never falls back to a default.
pub fn parse_sysconfig(text: &str, file: &Path) -> (Option<Lag>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut vars: Vec<(String, String, usize)> = Vec::new();
    for (line_no, joined) in logical_lines(text) {
        let line = joined.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let exported = line.strip_prefix("export ").map(str::trim_start);
        // `export NAME...` alone only marks variables for export: nothing to read.
        let is_name = |w: &str| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if exported
            .is_some_and(|names| !names.contains('=') && names.split_whitespace().all(is_name))
        {
            continue;
        }
        let line = exported.unwrap_or(line);
        let diag = |message: String| Diagnostic {
            level: Level::Error,
            file: file.to_path_buf(),
            line: Some(line_no),
            section: None,
            key: None,
            message,
        };
        let Some((name, value)) = line.split_once('=') else {
            diags.push(diag(
                "not a shell assignment NAME=value; vflag does not run shell commands".into(),
            ));
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            diags.push(diag(format!(
                "{name:?} is not a shell variable name; vflag reads only NAME=value lines"
            )));
            continue;
        }
        match shell_value(value) {
            Ok(v) => vars.push((name.to_string(), v, line_no)),
            Err(e) => diags.push(Diagnostic {
                key: Some(name.to_string()),
                ..diag(e)
            }),
        }
    }
    let get = |name: &str| {
        vars.iter()
            .rev()
            .find(|(n, v, _)| n == name && !v.is_empty())
            .map(|(_, v, l)| (v.as_str(), *l))
    };
    // Any line refused above may have set a variable: never guess, never fall back.
    let mut ok = !diags.iter().any(|d| d.level == Level::Error);
    let mut num = |name: &str, max: u32, default: u32, diags: &mut Vec<Diagnostic>| match get(name)
    {
        None => default,
        Some((v, line)) => count(v, max).unwrap_or_else(|allowed| {
            ok = false;
            diags.push(Diagnostic {
                level: Level::Error,
                file: file.to_path_buf(),
                line: Some(line),
                section: None,
                key: Some(name.to_string()),
                message: format!("{v:?} is not valid; {allowed}"),
            });
            default
        }),
    };
    let vfs = num("SRIOV_VF_COUNT", MAX_VFS, seed::VF_COUNT, &mut diags);
    let pf_channels = num(
        "SRIOV_PF_CHANNELS",
        MAX_CHANNELS,
        seed::PF_CHANNELS,
        &mut diags,
    );
    let vf_channels = num(
        "SRIOV_VF_CHANNELS",
        MAX_CHANNELS,
        seed::VF_CHANNELS,
        &mut diags,
    );
    let (pfs_text, pfs_line) = get("SRIOV_PFS").unwrap_or((seed::PFS, 0));
    let pfs = parse_pfs(pfs_text).unwrap_or_else(|allowed| {
        ok = false;
        diags.push(Diagnostic {
            level: Level::Error,
            file: file.to_path_buf(),
            line: Some(pfs_line).filter(|l| *l > 0),
            section: None,
            key: Some("SRIOV_PFS".into()),
            message: format!("{pfs_text:?} is not valid; {allowed}"),
        });
        Vec::new()
    });
    for (name, _, line) in &vars {
        if name.starts_with("SRIOV_")
            && ![
                "SRIOV_PFS",
                "SRIOV_VF_COUNT",
                "SRIOV_PF_CHANNELS",
                "SRIOV_VF_CHANNELS",
            ]
            .contains(&name.as_str())
        {
            diags.push(Diagnostic {
                level: Level::Warning,
                file: file.to_path_buf(),
                line: Some(*line),
                section: None,
                key: Some(name.clone()),
                message: "unknown variable is ignored; known: SRIOV_PFS, SRIOV_VF_COUNT, SRIOV_PF_CHANNELS, SRIOV_VF_CHANNELS".into(),
            });
        }
    }
    if !ok {
        diags.push(Diagnostic {
            level: Level::Error,
            file: file.to_path_buf(),
            line: None,
            section: None,
            key: None,
            message: "VF-LAG set-up is skipped because of the errors above".into(),
        });
        return (None, diags);
    }
    let lag = Lag {
        name: "sysconfig".into(),
        source: file.to_path_buf(),
        pfs,
        vfs,
        pf_channels: Some(pf_channels),
        representor_channels: Some(vf_channels),
        eswitch: EswitchMode::Switchdev,
        network_stack: NetworkStack::Auto,
        before: vec![DEFAULT_BEFORE.to_string()],
        device_timeout: DEFAULT_DEVICE_TIMEOUT,
        lag_timeout: DEFAULT_LAG_TIMEOUT,
        setup_timeout_max: DEFAULT_SETUP_TIMEOUT_MAX,
        flow_steering_mode: None,
        lag_port_select_mode: None,
        representor_names: false,
    };
    (Some(lag), diags)
}

/// Physical lines joined as the shell reads them: while a quote is open (a quoted value may span
/// lines) or a line ends in a backslash. Each with the number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (i, raw) in text.lines().enumerate() {
        match out.last_mut() {
            Some((_, acc)) if open => {
                acc.push('\n');
                acc.push_str(raw);
            }
            _ => out.push((i + 1, raw.to_string())),
        }
        open = continues(&out.last().expect("just pushed").1);
    }
    out
}

/// Whether the shell would read on past the end of `s`: a quote still open, or a trailing
/// backslash. A `#` that starts a word outside quotes starts a comment.
fn continues(s: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut word_start = true;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') if word_start => return false,
            // The guard consumes the escaped character.
            (None, '\\') | (Some('"'), '\\') if chars.next().is_none() => return true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        word_start = quote.is_none() && c.is_whitespace();
    }
    quote.is_some()
}

/// One shell word: unquoted, "double" or 'single' quoted (or a mix), with a trailing
/// ` # comment`. Expansions (`$`, backquotes) are refused: vflag does not run a shell.
fn shell_value(v: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("unterminated single quote".into()),
                }
            },
            '"' => {
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$') | Some('`') => return Err(
                            "shell expansions ($, `) are not supported; write the value literally"
                                .into(),
                        ),
                        // Inside double quotes a backslash escapes only $ ` " \ and newline.
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(c @ ('$' | '`' | '"' | '\\')) => out.push(c),
                            Some(c) => {
                                out.push('\\');
                                out.push(c)
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => out.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '$' | '`' => {
                return Err(
                    "shell expansions ($, `) are not supported; write the value literally".into(),
                )
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(c) => out.push(c),
            },
            c if c.is_whitespace() => {
                let rest: String = chars.collect();
                let rest = rest.trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    return Ok(out);
                }
                return Err("a value with spaces must be quoted (the shell would run the rest as a command)".into());
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysconfig(text: &str) -> (Option<Lag>, Vec<Diagnostic>) {
        parse_sysconfig(text, Path::new(SYSCONFIG))
    }

    #[test]
    fn sysconfig_takes_seed_defaults() {
        let (lag, diags) = sysconfig("");
        let lag = lag.unwrap();
        assert!(diags.is_empty());
        assert_eq!(
            lag.pfs,
            [
                IfName::new("ens3f0").unwrap(),
                IfName::new("ens3f1").unwrap()
            ]
        );
        assert_eq!(
            (lag.vfs, lag.pf_channels, lag.representor_channels),
            (8, Some(63), Some(18))
        );
    }

    #[test]
    fn sysconfig_shell_syntax() {
        let (lag, diags) = sysconfig(
            "# c\n  SRIOV_PFS=\"p0 p1\" # two ports\nexport SRIOV_VF_COUNT='4'\nSRIOV_PF_CHANNELS=2\nSRIOV_VF_CHANNELS=\nSRIOV_VF_COUNT=5\n",
        );
        let lag = lag.unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(lag.pfs.len(), 2);
        assert_eq!(lag.pfs[1].as_str(), "p1");
        // Last assignment wins, as in the shell; an empty one means "default".
        assert_eq!(
            (lag.vfs, lag.pf_channels, lag.representor_channels),
            (5, Some(2), Some(18))
        );
    }

    #[test]
    fn sysconfig_errors_name_line_and_key() {
        let (lag, diags) = sysconfig("SRIOV_PFS=$(ls)\nSRIOV_VF_COUNT=lots\n");
        assert!(lag.is_none());
        let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert!(
            shown[0].starts_with("/etc/sysconfig/sriov:1: SRIOV_PFS:"),
            "{shown:?}"
        );
        assert!(shown[0].contains("expansions"), "{shown:?}");
        assert!(
            shown[1].starts_with("/etc/sysconfig/sriov:2: SRIOV_VF_COUNT:"),
            "{shown:?}"
        );
        let (_, diags) = sysconfig("SRIOV_PFS=a b\n");
        assert!(diags[0].message.contains("must be quoted"), "{diags:?}");
    }

    /// A value that is there but refused skips the set-up: it never means "the default".
    #[test]
    fn sysconfig_refused_value_never_falls_back_to_default() {
        for text in [
            "SRIOV_PFS=\"$PF0 $PF1\"\n",
            "SRIOV_PFS=\"ens3f0;reboot\"\n",
            "SRIOV_PFS=\"ens3f0\n",
            "SRIOV_PFS=\"p0 p1\"\nSRIOV_VF_COUNT=\"$N\"\n",
            "SRIOV_PFS=\"p0 p1\"\nSRIOV_PF_CHANNELS=`nproc`\n",
            "SRIOV_PFS=\"p0 p1\"\nsource /etc/sriov.local\n",
            "SRIOV_PFS=\"p0 p1\"\nexport SRIOV_PFS; reboot\n",
        ] {
            let (lag, diags) = sysconfig(text);
            assert!(lag.is_none(), "{text:?} planned {lag:?}");
            assert!(
                diags.last().unwrap().message.contains("skipped"),
                "{text:?}: {diags:?}"
            );
        }
        let (_, diags) = sysconfig("SRIOV_PFS=\"ens3f0;reboot\"\n");
        assert_eq!(
            diags[0].to_string(),
            "/etc/sysconfig/sriov:1: SRIOV_PFS: \"ens3f0;reboot\" is not valid; interface name \"ens3f0;reboot\" contains ';'; a configured PF name may not contain shell characters (;&|<>()$`'\"*?[]{}!~#)"
        );
    }

    #[test]
    fn sysconfig_quoted_value_may_span_lines() {
        let (lag, diags) = sysconfig("SRIOV_PFS=\"ens3f0\n ens3f1\"\nSRIOV_VF_COUNT=4\n");
        assert!(diags.is_empty(), "{diags:?}");
        let lag = lag.unwrap();
        assert_eq!(
            lag.pfs,
            [
                IfName::new("ens3f0").unwrap(),
                IfName::new("ens3f1").unwrap()
            ]
        );
        assert_eq!(lag.vfs, 4);
        // Two NICs, one port per line, a '#' inside the quotes, a backslash continuation.
        let (lag, diags) = sysconfig(
            "# ports\nSRIOV_PFS='ens3f0 ens3f1\n# not a comment\nens4f0 ens4f1' # two NICs\nSRIOV_VF_COUNT=1\\\n6\n",
        );
        assert!(diags.iter().any(|d| d.message.contains("#")), "{diags:?}");
        assert!(lag.is_none());
        let (lag, diags) = sysconfig(
            "SRIOV_PFS='ens3f0 ens3f1\n\nens4f0 ens4f1' # two NICs\nSRIOV_VF_COUNT=1\\\n6\nexport SRIOV_PFS SRIOV_VF_COUNT\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let lag = lag.unwrap();
        assert_eq!(lag.pfs.len(), 4);
        assert_eq!(lag.vfs, 16);
        // An error inside names the assignment's first line.
        let (_, diags) = sysconfig("\nSRIOV_PFS=\"ens3f0\nens3f1 $X\"\n");
        assert!(
            diags[0]
                .to_string()
                .starts_with("/etc/sysconfig/sriov:2: SRIOV_PFS:"),
            "{diags:?}"
        );
    }

    #[test]
    fn shell_values() {
        assert_eq!(shell_value("\"a b\"").unwrap(), "a b");
        assert_eq!(shell_value("'a'\"b\"c").unwrap(), "abc");
        assert_eq!(shell_value("x   # note").unwrap(), "x");
        assert!(shell_value("\"open").is_err());
        assert!(shell_value("'open").is_err());
        assert!(shell_value("`id`").is_err());
    }

    #[test]
    fn timespans() {
        assert_eq!(timespan("30").unwrap(), Duration::from_secs(30));
        assert_eq!(timespan("1min 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(timespan("1500ms").unwrap(), Duration::from_millis(1500));
        for bad in [
            "",
            "0",
            "500ms",
            "2h",
            "-1s",
            "1x",
            "s",
            "99999999999999999999999",
        ] {
            assert!(timespan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(count("8", MAX_VFS), Ok(8));
        for bad in ["0", "-1", "65536", "", "1.5", "８", "0x10"] {
            assert!(count(bad, MAX_VFS).is_err(), "{bad}");
        }
    }

    fn native(files: &[(&str, &str)]) -> Loaded {
        let files: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), t.to_string()))
            .collect();
        parse_native(&files)
    }

    fn shown(loaded: &Loaded) -> Vec<String> {
        loaded.diagnostics.iter().map(|d| d.to_string()).collect()
    }

    fn lag_names(loaded: &Loaded) -> Vec<&str> {
        loaded.plan.lags.iter().map(|l| l.name.as_str()).collect()
    }

    #[test]
    fn section_repeated_in_one_file_is_an_error() {
        let loaded = native(&[(
            MAIN_CONFIG,
            "[lag a]\npfs = p0 p1\n\n[lag b]\npfs = p2\n[lag  a]\nvfs = 4\n",
        )]);
        assert_eq!(lag_names(&loaded), ["b"], "{:?}", shown(&loaded));
        let shown = shown(&loaded);
        assert!(
            shown[0].starts_with(
                "/etc/vflag/vflag.conf:6: [lag a] section repeated in this file (lines 1, 6);"
            ),
            "{shown:?}"
        );
        assert!(shown[1].contains("LAG \"a\" is skipped"), "{shown:?}");
        // [ovs] twice: ignored, defaults apply.
        let loaded = native(&[(MAIN_CONFIG, "[ovs]\nhw-offload = yes\n[ovs]\n")]);
        assert!(!loaded.ovs.hw_offload);
        assert_eq!(loaded.errors().count(), 2, "{:?}", loaded.diagnostics);
    }

    #[test]
    fn section_in_a_later_file_still_overrides() {
        let loaded = native(&[
            (MAIN_CONFIG, "[lag a]\npfs = p0 p1\nvfs = 8\n"),
            ("/etc/vflag/vflag.conf.d/50-x.conf", "[lag a]\nvfs = 4\n"),
        ]);
        assert!(loaded.diagnostics.is_empty(), "{:?}", shown(&loaded));
        assert_eq!(loaded.plan.lags[0].vfs, 4);
    }

    #[test]
    fn pf_of_a_skipped_lag_is_still_taken() {
        // [lag a] is skipped for its vfs; [lag b] names its p1 and must not get it either.
        let loaded = native(&[(
            MAIN_CONFIG,
            "[lag a]\npfs = p0 p1\nvfs = many\n[lag b]\npfs = p1 p2\n[lag c]\npfs = p3\n",
        )]);
        assert_eq!(lag_names(&loaded), ["c"], "{:?}", shown(&loaded));
        assert!(
            shown(&loaded)
                .iter()
                .any(|d| d.contains("[lag b] PF p1 is already in [lag a] (itself skipped)")),
            "{:?}",
            shown(&loaded)
        );
        // Also when the skipped LAG's pfs value is itself invalid (three PFs).
        let loaded = native(&[(
            MAIN_CONFIG,
            "[lag a]\npfs = p0 p1 p2\n[lag b]\npfs = p2 p3\n",
        )]);
        assert!(loaded.plan.lags.is_empty(), "{:?}", shown(&loaded));
        assert!(
            shown(&loaded)
                .iter()
                .any(|d| d.contains("PF p2 is already in [lag a]")),
            "{:?}",
            shown(&loaded)
        );
    }

    #[test]
    fn before_refuses_ordering_cycles() {
        for (value, ok) in [
            ("docker.service kolla-*-container.service", true),
            ("multi-user.target", true),
            ("network-online.target", false),
            ("docker.service sysinit.target", false),
            ("*.service", false),
            ("vflag@ens3f0.service", false),
        ] {
            let text = format!("[lag a]\npfs = p0\nbefore = {value}\n");
            let loaded = native(&[(MAIN_CONFIG, &text)]);
            assert_eq!(
                loaded.plan.lags.len() == 1,
                ok,
                "{value}: {:?}",
                shown(&loaded)
            );
            if !ok {
                let d = &shown(&loaded)[0];
                assert!(
                    d.starts_with("/etc/vflag/vflag.conf:3: [lag a] before:"),
                    "{d}"
                );
                assert!(d.contains("ordering cycle"), "{d}");
            }
        }
    }

    #[test]
    fn units_validated() {
        assert!(parse_units("docker.service kolla-*-container.service").is_ok());
        for bad in ["docker", "../x.service", "a b/c.service", "x.bogus"] {
            assert!(parse_units(bad).is_err(), "{bad}");
        }
    }
}
