//! The vflag.conf ini format: sections merged across the main file and drop-ins, then each
//! `[lag NAME]` / `[ovs]` section checked key by key into the [`Plan`].

use super::values::{
    count, one_of, parse_before, parse_eswitch, parse_pfs, parse_stack, timespan, yes_no,
};
use super::*;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
