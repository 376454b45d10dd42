//! `phys_port_name`, the one parser of it: what a netdev says it is (a physical port, a VF's
//! or sub-function's representor). Used by the representor scan, udev-import and naming.

/// What a `phys_port_name` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortName {
    /// A physical port: empty (e.g. mlx5 in legacy mode) or `p<N>`.
    Physical,
    /// A VF's representor: `[c<C>]pf<P>vf<V>`.
    Vf {
        controller: Option<u32>,
        pf: u32,
        vf: u32,
    },
    /// A sub-function's representor: `[c<C>]pf<P>sf<S>`.
    Sf {
        controller: Option<u32>,
        pf: u32,
    },
    Other,
}

fn num(t: &str) -> Option<u32> {
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

impl PortName {
    pub fn parse(s: &str) -> PortName {
        if s.is_empty() || s.strip_prefix('p').and_then(num).is_some() {
            return PortName::Physical;
        }
        let (controller, rest) = match s.strip_prefix('c') {
            Some(r) => match r.split_once("pf") {
                Some((c, rest)) if num(c).is_some() => (num(c), rest),
                _ => return PortName::Other,
            },
            None => match s.strip_prefix("pf") {
                Some(rest) => (None, rest),
                None => return PortName::Other,
            },
        };
        if let Some((pf, vf)) = rest.split_once("vf") {
            if let (Some(pf), Some(vf)) = (num(pf), num(vf)) {
                return PortName::Vf { controller, pf, vf };
            }
        }
        if let Some((pf, sf)) = rest.split_once("sf") {
            if let (Some(pf), Some(_)) = (num(pf), num(sf)) {
                return PortName::Sf { controller, pf };
            }
        }
        PortName::Other
    }

    /// A VF's or sub-function's representor (never a PF).
    pub fn is_representor(self) -> bool {
        matches!(self, PortName::Vf { .. } | PortName::Sf { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_port_names() {
        for p in ["", "p0", "p1", "p12"] {
            assert_eq!(PortName::parse(p), PortName::Physical, "{p}");
        }
        assert_eq!(
            PortName::parse("c1pf0vf12"),
            PortName::Vf {
                controller: Some(1),
                pf: 0,
                vf: 12
            }
        );
        for r in ["pf0vf0", "pf1vf15", "c1pf0vf5", "pf0sf3", "c12pf1sf0"] {
            assert!(PortName::parse(r).is_representor(), "{r}");
        }
        for o in [
            "p", "px", "pf0", "vf0", "c1p0", "np0", "pf0vf", "pfxvf1", "c1pf0", "pf0vf1x",
        ] {
            assert_eq!(PortName::parse(o), PortName::Other, "{o}");
        }
    }
}
