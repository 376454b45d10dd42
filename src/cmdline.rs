//! Kernel command line: `vflag=0|off|no|false` disables vflag for one boot; the last
//! occurrence wins (as for every kernel parameter that systemd reads).

use crate::paths::Root;

/// Split a command line into words the way the kernel and systemd do: whitespace separates,
/// double quotes group (`foo="a b"` is one word `foo=a b`).
pub fn words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// What the command line says about vflag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cmdline {
    /// `Some(false)` when the last `vflag=` says off.
    pub enabled: Option<bool>,
    /// Values of `vflag=` that were not understood (reported, then ignored).
    pub invalid: Vec<String>,
    /// Every word, for the IOMMU checks.
    pub words: Vec<String>,
}

impl Cmdline {
    pub fn parse(cmdline: &str) -> Self {
        let words = words(cmdline);
        let mut enabled = None;
        let mut invalid = Vec::new();
        for w in &words {
            let value = match w.split_once('=') {
                Some(("vflag", v)) => v,
                None if w == "vflag" => "1",
                _ => continue,
            };
            match parse_bool(value) {
                Some(b) => enabled = Some(b),
                None => invalid.push(value.to_string()),
            }
        }
        Cmdline {
            enabled,
            invalid,
            words,
        }
    }

    /// `/proc/cmdline` under `root`; an unreadable file counts as empty.
    pub fn read(root: &Root) -> Self {
        Self::parse(&std::fs::read_to_string(root.path("/proc/cmdline")).unwrap_or_default())
    }

    pub fn disabled(&self) -> bool {
        self.enabled == Some(false)
    }

    /// The value of the last `key=value` word, if any.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.words
            .iter()
            .rev()
            .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// systemd's boolean spellings.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(words(" a  b=\"c d\" e\n"), ["a", "b=c d", "e"]);
        assert_eq!(words("\"x y\""), ["x y"]);
        assert!(words("   ").is_empty());
    }

    #[test]
    fn last_vflag_wins() {
        assert!(Cmdline::parse("ro vflag=0").disabled());
        assert!(Cmdline::parse("vflag=off quiet").disabled());
        assert!(!Cmdline::parse("vflag=0 vflag=1").disabled());
        assert!(Cmdline::parse("vflag=1 vflag=false").disabled());
        assert!(!Cmdline::parse("ro quiet").disabled());
        assert!(!Cmdline::parse("novflag=0 vflagx=0").disabled());
        let c = Cmdline::parse("vflag=maybe");
        assert!(!c.disabled());
        assert_eq!(c.invalid, ["maybe"]);
    }

    #[test]
    fn value_lookup() {
        let c = Cmdline::parse("intel_iommu=off intel_iommu=on iommu=pt");
        assert_eq!(c.value("intel_iommu"), Some("on"));
        assert_eq!(c.value("iommu"), Some("pt"));
        assert_eq!(c.value("amd_iommu"), None);
    }
}
