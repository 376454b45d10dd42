//! Where a log line comes from (`/dev/kmsg`, `dmesg`, `journalctl -k`): its time, device and
//! message, before anything is made of the message.

use super::Stamp;

/// A log line split into time, device and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: Stamp,
    /// The device as `dev_printk` names it: the PCI address of a `mlx5_core <pci>: ` prefix
    /// (anywhere in the line), the `<dev_name>` of a `<driver> <dev_name>: ` prefix at the start
    /// of the message (any driver and bus, e.g. `netdevsim netdevsim10: `), or the kmsg
    /// `DEVICE=+pci:` field.
    pub device: Option<String>,
    /// The driver of that prefix (`mlx5_core`, `netdevsim`, ...): the message came from
    /// `dev_printk` (dev_info, dev_err, mlx5_core_info, ...) on `device`.
    pub driver: Option<String>,
    /// Whether the message carried the `mlx5_core <pci>: ` prefix.
    pub mlx5: bool,
    /// The message after the device prefix, unescaped and trimmed.
    pub text: String,
}

pub(super) fn is_pci_addr(s: &str) -> bool {
    // dddd:bb:dd.f (hex digits; function 0-7)
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_hexdigit())
        && (b'0'..=b'7').contains(&b[11])
}

/// Undo kmsg's `\xNN` escaping (it escapes control characters, e.g. a tab as `\x09`).
fn unescape_kmsg(s: &str) -> String {
    if !s.contains("\\x") {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(hex) = s.get(i + 2..i + 4) {
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split a kmsg record header `prio,seq,usec,flags;message`.
fn split_kmsg(line: &str) -> Option<(u64, u64, &str)> {
    let (head, msg) = line.split_once(';')?;
    let mut f = head.split(',');
    let prio = f.next()?;
    let seq = f.next()?.parse().ok()?;
    let usec = f.next()?.parse().ok()?;
    if prio.is_empty() || !prio.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((seq, usec, msg))
}

/// `[   44.064025] rest` -> (44064025, rest).
fn split_dmesg(line: &str) -> Option<(Option<u64>, &str)> {
    let rest = line.strip_prefix('[')?;
    let (inside, after) = rest.split_once(']')?;
    let inside = inside.trim();
    let usec = inside.split_once('.').and_then(|(s, frac)| {
        let secs: u64 = s.parse().ok()?;
        if frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // Scale the fraction to microseconds whatever its width.
        let mut micros: u64 = 0;
        for c in frac.bytes().chain(std::iter::repeat(b'0')).take(6) {
            micros = micros * 10 + u64::from(c - b'0');
        }
        Some(secs * 1_000_000 + micros)
    });
    Some((usec, after.strip_prefix(' ').unwrap_or(after)))
}

/// Find `mlx5_core <pci>: ` anywhere in `msg`; return the PCI address and the text after it.
fn split_mlx5_prefix(msg: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(pos) = msg[from..].find("mlx5_core ") {
        let start = from + pos + "mlx5_core ".len();
        let rest = &msg[start..];
        if let Some(pci) = rest.get(..12) {
            if is_pci_addr(pci) {
                if let Some(text) = rest[12..].strip_prefix(':') {
                    return Some((pci, text));
                }
            }
        }
        from = start;
    }
    None
}

/// `<driver> <dev_name>: text` at the start of `msg`, as `dev_printk` prints it
/// (`dev_driver_string`, `dev_name`). The driver is one word of `[A-Za-z0-9_.-]`; the device
/// name has no space and ends with the colon. Returns (driver, device, text).
fn split_dev_prefix(msg: &str) -> Option<(&str, &str, &str)> {
    let (driver, rest) = msg.split_once(' ')?;
    let word = |c: u8| c.is_ascii_alphanumeric() || b"_.-".contains(&c);
    if driver.is_empty() || !driver.bytes().all(word) {
        return None;
    }
    let (dev, text) = rest.split_once(' ')?;
    let dev = dev.strip_suffix(':')?;
    if dev.is_empty() || dev.bytes().any(|c| c.is_ascii_control()) {
        return None;
    }
    Some((driver, dev, text))
}

/// Parse one log line of any supported format. kmsg dictionary continuation lines (starting
/// with a space) return `None`; [`parse_lines`] attaches them to their record.
pub fn parse_line(line: &str, index: usize) -> Option<LogLine> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.starts_with(' ') || line.is_empty() {
        return None;
    }
    let mut at = Stamp {
        line: index,
        ..Stamp::default()
    };
    let msg: String = if let Some((seq, usec, msg)) = split_kmsg(line) {
        at.seq = Some(seq);
        at.usec = Some(usec);
        unescape_kmsg(msg)
    } else if let Some((usec, rest)) = split_dmesg(line) {
        at.usec = usec;
        rest.to_string()
    } else {
        line.to_string()
    };
    let (device, driver, mlx5, text) = if let Some((pci, text)) = split_mlx5_prefix(&msg) {
        (Some(pci), Some("mlx5_core"), true, text)
    } else if let Some((driver, dev, text)) = split_dev_prefix(&msg) {
        (Some(dev), Some(driver), false, text)
    } else {
        (None, None, false, msg.as_str())
    };
    Some(LogLine {
        at,
        device: device.map(str::to_string),
        driver: driver.map(str::to_string),
        mlx5,
        text: text.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        assert!(is_pci_addr("0000:37:00.0"));
        assert!(is_pci_addr("0000:af:00.1"));
        assert!(!is_pci_addr("0000:37:00.8"));
        assert!(!is_pci_addr("0000:37:0x.0"));
        assert!(!is_pci_addr("0000:37:00"));
    }

    #[test]
    fn dmesg_prefix_scales_fraction() {
        assert_eq!(
            split_dmesg("[   44.064025] x"),
            Some((Some(44_064_025), "x"))
        );
        assert_eq!(split_dmesg("[   44.06] x"), Some((Some(44_060_000), "x")));
    }

    #[test]
    fn dev_printk_prefix_of_any_driver() {
        let l = parse_line(
            "6,900,12,-;netdevsim netdevsim10: lag map: port 1:1 port 2:1",
            0,
        )
        .unwrap();
        assert_eq!(
            (
                l.driver.as_deref(),
                l.device.as_deref(),
                l.mlx5,
                l.text.as_str()
            ),
            (
                Some("netdevsim"),
                Some("netdevsim10"),
                false,
                "lag map: port 1:1 port 2:1"
            )
        );
        let l = parse_line(
            "[ 4.5] mlx5_core 0000:37:00.0: lag map: port 1:1 port 2:1",
            0,
        )
        .unwrap();
        assert_eq!(
            (l.driver.as_deref(), l.device.as_deref(), l.mlx5),
            (Some("mlx5_core"), Some("0000:37:00.0"), true)
        );
        // Not a dev_printk prefix: a subsystem tag, a netdev_printk prefix, plain text.
        for m in [
            "bonding: bond0: Enslaving eni10np1",
            "netdevsim netdevsim10 eni10np1: renamed from eth0",
            "random: crng init done",
            "lag map port 1:1 port 2:1",
        ] {
            let l = parse_line(m, 0).unwrap();
            assert_eq!((l.device, l.driver), (None, None), "{m}");
        }
    }

    #[test]
    fn kmsg_unescape() {
        assert_eq!(unescape_kmsg("a\\x09port 1:1"), "a\tport 1:1");
        assert_eq!(unescape_kmsg("plain"), "plain");
        assert_eq!(unescape_kmsg("odd \\xZZ"), "odd \\xZZ");
    }
}
