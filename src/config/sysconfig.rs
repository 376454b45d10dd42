//! The seed's legacy `/etc/sysconfig/sriov` (shell assignments), read without running a shell.

use super::values::{count, parse_pfs};
use super::*;
use crate::names::IfName;

/// The seed's `/etc/sysconfig/sriov`: shell assignments, sourced by bash. Variables it leaves
/// out — or sets empty, as `${VAR:-default}` treats them — take the seed's defaults. A line
/// vflag cannot read exactly as the shell would (an expansion, a command) skips the whole
/// set-up: a value that is there but refused never falls back to a default.
pub fn parse_sysconfig(text: &str, file: &Path) -> (Option<Lag>, Vec<Diagnostic>) {
    let mut r = Reader {
        file,
        vars: Vec::new(),
        diags: Vec::new(),
    };
    r.read_assignments(text);
    // Any line refused above may have set a variable: never guess, never fall back.
    let mut ok = !r.has_errors();
    let vfs = r.number("SRIOV_VF_COUNT", MAX_VFS, seed::VF_COUNT, &mut ok);
    let pf_channels = r.number(
        "SRIOV_PF_CHANNELS",
        MAX_CHANNELS,
        seed::PF_CHANNELS,
        &mut ok,
    );
    let vf_channels = r.number(
        "SRIOV_VF_CHANNELS",
        MAX_CHANNELS,
        seed::VF_CHANNELS,
        &mut ok,
    );
    let pfs = r.pfs(&mut ok);
    r.warn_unknown();
    let mut diags = r.diags;
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

const KNOWN: [&str; 4] = [
    "SRIOV_PFS",
    "SRIOV_VF_COUNT",
    "SRIOV_PF_CHANNELS",
    "SRIOV_VF_CHANNELS",
];

/// The assignments read so far (name, value, line) and what was wrong.
struct Reader<'a> {
    file: &'a Path,
    vars: Vec<(String, String, usize)>,
    diags: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn diag(
        &self,
        level: Level,
        line: Option<usize>,
        key: Option<&str>,
        message: String,
    ) -> Diagnostic {
        Diagnostic {
            level,
            file: self.file.to_path_buf(),
            line,
            section: None,
            key: key.map(str::to_string),
            message,
        }
    }

    fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.level == Level::Error)
    }

    /// Every `NAME=value` line into `vars`; anything else is an error naming its line.
    fn read_assignments(&mut self, text: &str) {
        for (line_no, joined) in logical_lines(text) {
            let line = joined.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let exported = line.strip_prefix("export ").map(str::trim_start);
            // `export NAME...` alone only marks variables for export: nothing to read.
            if exported
                .is_some_and(|names| !names.contains('=') && names.split_whitespace().all(is_name))
            {
                continue;
            }
            let line = exported.unwrap_or(line);
            let error =
                |key: Option<&str>, message| self.diag(Level::Error, Some(line_no), key, message);
            let Some((name, value)) = line.split_once('=') else {
                let d = error(
                    None,
                    "not a shell assignment NAME=value; vflag does not run shell commands".into(),
                );
                self.diags.push(d);
                continue;
            };
            if name.is_empty() || !is_name(name) {
                let d = error(
                    None,
                    format!(
                        "{name:?} is not a shell variable name; vflag reads only NAME=value lines"
                    ),
                );
                self.diags.push(d);
                continue;
            }
            match shell_value(value) {
                Ok(v) => self.vars.push((name.to_string(), v, line_no)),
                Err(e) => {
                    let d = error(Some(name), e);
                    self.diags.push(d);
                }
            }
        }
    }

    /// The last non-empty value of `name` (`${VAR:-default}` treats empty as unset), with its line.
    fn get(&self, name: &str) -> Option<(&str, usize)> {
        self.vars
            .iter()
            .rev()
            .find(|(n, v, _)| n == name && !v.is_empty())
            .map(|(_, v, l)| (v.as_str(), *l))
    }

    /// A count, or `default` when unset; a refused value clears `ok`.
    fn number(&mut self, name: &str, max: u32, default: u32, ok: &mut bool) -> u32 {
        let Some((v, line)) = self.get(name) else {
            return default;
        };
        match count(v, max) {
            Ok(n) => n,
            Err(allowed) => {
                *ok = false;
                let d = self.diag(
                    Level::Error,
                    Some(line),
                    Some(name),
                    format!("{v:?} is not valid; {allowed}"),
                );
                self.diags.push(d);
                default
            }
        }
    }

    /// `SRIOV_PFS`, or the seed's PFs when unset; a refused value clears `ok`.
    fn pfs(&mut self, ok: &mut bool) -> Vec<IfName> {
        let (text, line) = self.get("SRIOV_PFS").unwrap_or((seed::PFS, 0));
        match parse_pfs(text) {
            Ok(pfs) => pfs,
            Err(allowed) => {
                *ok = false;
                let d = self.diag(
                    Level::Error,
                    Some(line).filter(|l| *l > 0),
                    Some("SRIOV_PFS"),
                    format!("{text:?} is not valid; {allowed}"),
                );
                self.diags.push(d);
                Vec::new()
            }
        }
    }

    /// A warning for each `SRIOV_*` variable vflag does not know (likely a typo).
    fn warn_unknown(&mut self) {
        for (name, _, line) in &self.vars {
            if name.starts_with("SRIOV_") && !KNOWN.contains(&name.as_str()) {
                self.diags.push(self.diag(
                    Level::Warning,
                    Some(*line),
                    Some(name),
                    format!("unknown variable is ignored; known: {}", KNOWN.join(", ")),
                ));
            }
        }
    }
}

fn is_name(w: &str) -> bool {
    w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
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
}
