//! A strict reader of the Prometheus text exposition format (version 0.0.4, what node_exporter's
//! textfile collector reads), to check `vflag status --prometheus` against the format's rules
//! rather than against strings: names and label names by their grammar, label values with their
//! three escapes, HELP/TYPE at most once per family and TYPE before its samples, each family in
//! one group, no two samples with the same name and labels, values as floats, a final newline.

use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name → TYPE.
    pub types: HashMap<String, String>,
    pub help: HashMap<String, String>,
}

impl Exposition {
    /// Samples of one metric name.
    pub fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !s.starts_with("__")
}

fn value(v: &str) -> Result<f64, String> {
    match v {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}")),
    }
}

/// `{a="x",b="y"}` at the start of `s` → labels and the rest of the line.
fn labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut out = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut val = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => val.push('\\'),
                    Some((_, '"')) => val.push('"'),
                    Some((_, 'n')) => val.push('\n'),
                    other => return Err(format!("bad escape {other:?} in label value")),
                },
                Some((_, '\n')) => return Err("newline in label value".into()),
                Some((_, c)) => val.push(c),
            }
        };
        if out.insert(name.to_string(), val).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

pub fn parse(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("does not end with a newline".into());
    }
    let mut e = Exposition::default();
    let mut done: HashSet<String> = HashSet::new(); // families whose group has ended
    let mut current: Option<String> = None;
    let mut seen: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    let mut enter = |fam: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() != Some(fam) {
            if done.contains(fam) {
                return Err(format!("family {fam} is not one group"));
            }
            if let Some(c) = current.take() {
                done.insert(c);
            }
            *current = Some(fam.to_string());
        }
        Ok(())
    };
    for (n, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut w = c.trim_start().splitn(3, ' ');
            let kind = w.next().unwrap_or("");
            if kind != "HELP" && kind != "TYPE" {
                continue; // a comment
            }
            let fam = w.next().ok_or_else(|| at("no metric name".into()))?;
            let rest = w.next().unwrap_or("");
            if !is_name(fam) {
                return Err(at(format!("bad metric name {fam:?}")));
            }
            enter(fam, &mut current).map_err(at)?;
            if kind == "HELP" {
                if e.help.insert(fam.into(), rest.into()).is_some() {
                    return Err(at("second HELP".into()));
                }
            } else {
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest) {
                    return Err(at(format!("bad type {rest:?}")));
                }
                if e.samples.iter().any(|s| s.name == fam) {
                    return Err(at("TYPE after samples".into()));
                }
                if e.types.insert(fam.into(), rest.into()).is_some() {
                    return Err(at("second TYPE".into()));
                }
            }
            continue;
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..end];
        if !is_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[end..].starts_with('{') {
            labels(&line[end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[end..])
        };
        let mut f = rest.split(' ').filter(|w| !w.is_empty());
        let v = value(f.next().ok_or_else(|| at("no value".into()))?).map_err(at)?;
        if let Some(ts) = f.next() {
            ts.parse::<i64>()
                .map_err(|e| at(format!("timestamp: {e}")))?;
        }
        if f.next().is_some() {
            return Err(at("trailing text".into()));
        }
        // A family is its name (no histogram/summary suffixes here: only gauges are written).
        enter(name, &mut current).map_err(at)?;
        if !seen.insert((name.to_string(), labels.clone())) {
            return Err(at("duplicate series".into()));
        }
        e.samples.push(Sample {
            name: name.into(),
            labels,
            value: v,
        });
    }
    Ok(e)
}

#[test]
fn the_reader_refuses_what_the_format_forbids() {
    assert!(parse("a{b=\"1\"} 1\n").is_ok());
    for bad in [
        "a 1",                                   // no final newline
        "a{b=\"1\"} 1\na{b=\"1\"} 0\n",          // duplicate series
        "a 1\nb 1\na 2\n",                       // family split
        "a x\n",                                 // not a float
        "1a 1\n",                                // bad name
        "a{b-c=\"1\"} 1\n",                      // bad label name
        "a{b=\"\\x\"} 1\n",                      // bad escape
        "# TYPE a gauge\n# TYPE a gauge\na 1\n", // two TYPEs
        "a 1\n# TYPE a gauge\n",                 // TYPE after samples
        "# TYPE a thing\na 1\n",                 // unknown type
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
