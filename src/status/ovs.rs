//! Open vSwitch: observed through its sockets and the tail of its log, judged (`ovs`,
//! `ovs-version`, `ovs-hw-offload`, `ovs-flows`, `ovs-errors`).

use super::*;
use crate::kernlog::{self, OffloadError};
use crate::ovsdb::{self, OvsStatus};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

#[derive(Debug, Clone)]
pub struct OvsObs {
    pub status: OvsStatus,
    /// The log file read and the offload errors in its tail; `Ok(None)`: no log file found.
    pub log: Seen<Option<(PathBuf, Vec<OffloadError>)>>,
}

/// Open vSwitch through its database and ovs-vswitchd sockets (each bounded by `timeout`; the
/// control socket is looked for next to the database socket), and the tail of its log.
pub fn observe_ovs(root: &Root, db_socket: &Path, timeout: Duration) -> OvsObs {
    let rundir = db_socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new(ovsdb::DEFAULT_RUNDIR));
    let status = ovsdb::ovs_status(root, db_socket, rundir, timeout);
    let mut log = Ok(None);
    for p in OVS_LOGS {
        let path = root.path(p);
        match kernlog::read_ovs_offload_errors(&path, OVS_LOG_TAIL) {
            Ok(errs) => {
                log = Ok(Some((PathBuf::from(p), errs)));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                log = Err(format!("{p}: {e}"));
                break;
            }
        }
    }
    OvsObs { status, log }
}

// ------------------------------------------------------------------------------------------
// Judging Open vSwitch

/// Port names whose offloaded flows are counted.
#[derive(Debug, Clone, Default)]
pub struct OvsPorts {
    pub bonds: Vec<String>,
    pub representors: Vec<String>,
}

/// `want_offload`: the config asks for hw-offload, or a LAG is switchdev (VF-LAG without OVS
/// offload is degraded).
pub fn judge_ovs(
    ovs: &OvsObs,
    want_offload: bool,
    ports: &OvsPorts,
    now: SystemTime,
) -> Vec<Finding> {
    let st = &ovs.status;
    let sock = st.db_sock.display().to_string();
    let mut out = vec![];
    if !st.present {
        out.push(if want_offload {
            bad(
                "ovs",
                None,
                Outcome::Warn,
                format!("Open vSwitch not found ({sock} absent or not listening)"),
                "start Open vSwitch (Kolla: the openvswitch_db and openvswitch_vswitchd containers), or set db-socket under [ovs] in the config",
            )
        } else {
            skip("ovs", None, format!("Open vSwitch not found ({sock})"))
        });
        return out;
    }
    // `dpctl/dump-flows` on a daemon without any bridge answers with an error: a state.
    let no_datapath = |e: &String| e.contains("no datapaths exist");
    let errors: Vec<String> = st
        .errors
        .iter()
        .filter(|e| !no_datapath(e))
        .map(|e| e.trim().replace('\n', " / "))
        .collect();
    let has_datapath = !st.errors.iter().any(no_datapath);
    out.push(if errors.is_empty() {
        pass("ovs", None, format!("database {sock}{}", if st.vswitchd_version.is_some() { ", ovs-vswitchd answering" } else { ", ovs-vswitchd not found" }))
    } else {
        bad("ovs", None, Outcome::Warn, format!("Open vSwitch answered with errors: {}", errors.join("; ")), "check that ovsdb-server and ovs-vswitchd are running (Kolla: docker ps | grep openvswitch)")
    });
    out.push(ovs_version(st, want_offload));
    out.push(ovs_hw_offload(st, want_offload));
    out.push(ovs_flows(st, has_datapath, ports));
    out.push(ovs_errors(ovs, ports, now));
    out
}

/// `ovs-version`: 2.12 or later for VF-LAG offload.
fn ovs_version(st: &OvsStatus, want_offload: bool) -> Finding {
    let src = match (&st.row, &st.vswitchd_version) {
        (Some(r), _) if r.version().is_some() => "ovs_version in the database",
        (_, Some(_)) => "ovs-vswitchd",
        _ => "",
    };
    match st.version {
        Some(v) if v.is_supported() => {
            pass("ovs-version", None, format!("Open vSwitch {v} ({src})"))
        }
        Some(v) => bad(
            "ovs-version",
            None,
            if want_offload {
                Outcome::Fail
            } else {
                Outcome::Warn
            },
            format!(
                "Open vSwitch {v} ({src}): VF-LAG offload needs {} or later",
                ovsdb::MIN_OVS_VERSION
            ),
            "upgrade Open vSwitch to 2.12 or later (Kolla: the Train release or later)",
        ),
        None => bad(
            "ovs-version",
            None,
            Outcome::Warn,
            "Open vSwitch version unknown (not in the database, ovs-vswitchd not answering)",
            "check that ovs-vswitchd is running",
        ),
    }
}

/// `ovs-hw-offload`: other_config:hw-offload=true.
fn ovs_hw_offload(st: &OvsStatus, want_offload: bool) -> Finding {
    let enable = "run `vflag ovs-offload enable` (sets other_config:hw-offload=true), then restart ovs-vswitchd (Kolla: docker restart openvswitch_vswitchd)";
    match st.hw_offload {
        Some(true) => pass("ovs-hw-offload", None, "other_config:hw-offload=true"),
        Some(false) if want_offload => bad("ovs-hw-offload", None, Outcome::Fail, "other_config:hw-offload is not true: flows are not offloaded, VF-LAG traffic takes the slow path", enable),
        Some(false) => bad("ovs-hw-offload", None, Outcome::Warn, "other_config:hw-offload is not true (no switchdev LAG configured)", enable),
        None => bad("ovs-hw-offload", None, Outcome::Warn, "other_config:hw-offload not readable", "check the Open vSwitch database (see the ovs row)"),
    }
}

/// `ovs-flows`: offloaded flows, counted per in-port on the bonds and representors.
fn ovs_flows(st: &OvsStatus, has_datapath: bool, ports: &OvsPorts) -> Finding {
    match &st.offloaded_flows {
        None if !has_datapath && st.vswitchd_version.is_some() => bad(
            "ovs-flows",
            None,
            Outcome::Warn,
            "ovs-vswitchd has no datapath: no Open vSwitch bridge exists",
            "put the bond into an Open vSwitch bridge (Kolla/Neutron: the provider bridge, e.g. br-ex); offloaded flows need one",
        ),
        None => bad("ovs-flows", None, Outcome::Warn, "offloaded flows unknown: ovs-vswitchd not reachable", "check that ovs-vswitchd is running and its control socket is next to the database socket"),
        Some(flows) => {
            let count = |names: &[String]| -> (usize, Vec<String>) {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let m = ovsdb::count_flows_by_in_port(flows, &refs);
                (m.values().sum(), m.iter().filter(|(_, n)| **n > 0).map(|(p, n)| format!("{p}: {n}")).collect())
            };
            let (nb, lb) = count(&ports.bonds);
            let (nr, lr) = count(&ports.representors);
            let mut d = format!("{} offloaded flows; in on the bond: {nb}", flows.len());
            if !lb.is_empty() {
                d.push_str(&format!(" ({})", lb.join(", ")));
            }
            d.push_str(&format!("; in on representors: {nr}"));
            if !lr.is_empty() {
                d.push_str(&format!(" ({})", lr.join(", ")));
            }
            if nb + nr == 0 {
                d.push_str(" (flows appear once VMs send traffic on VF-LAG ports)");
            }
            pass("ovs-flows", None, d)
        }
    }
}

/// `ovs-errors`: recent "failed to offload flow" lines in the ovs-vswitchd log's tail.
fn ovs_errors(ovs: &OvsObs, ports: &OvsPorts, now: SystemTime) -> Finding {
    match &ovs.log {
        Err(e) => bad(
            "ovs-errors",
            None,
            Outcome::Warn,
            format!("cannot read the ovs-vswitchd log: {e}"),
            "run as root",
        ),
        Ok(None) => skip(
            "ovs-errors",
            None,
            format!("no ovs-vswitchd log at {}", OVS_LOGS.join(" or ")),
        ),
        Ok(Some((path, errs))) => {
            let recent: Vec<&OffloadError> = errs
                .iter()
                .filter(|e| match e.timestamp.as_deref().and_then(parse_ovs_time) {
                    Some(t) => now
                        .duration_since(t)
                        .map(|age| age <= RECENT)
                        .unwrap_or(true),
                    None => true, // no timestamp (syslog form): cannot tell, count it
                })
                .collect();
            if recent.is_empty() {
                pass(
                    "ovs-errors",
                    None,
                    format!(
                        "no \"failed to offload flow\" in the last {} min of {} (tail)",
                        RECENT.as_secs() / 60,
                        path.display()
                    ),
                )
            } else {
                let last = recent[recent.len() - 1];
                let mut on: Vec<&str> = recent.iter().map(|e| e.port.as_str()).collect();
                on.sort();
                on.dedup();
                let lag_port = on.iter().any(|p| {
                    ports
                        .bonds
                        .iter()
                        .chain(&ports.representors)
                        .any(|b| b == p)
                });
                bad(
                    "ovs-errors",
                    None,
                    if lag_port { Outcome::Fail } else { Outcome::Warn },
                    format!(
                        "{} \"failed to offload flow\" errors in the last {} min of {} (ports {}); last: {}: {}",
                        recent.len(),
                        RECENT.as_secs() / 60,
                        path.display(),
                        on.join(", "),
                        last.reason,
                        last.port
                    ),
                    "offload needs hw-tc-offload on the bond's PFs and the representors, an active switchdev LAG, and hw-offload=true in a restarted ovs-vswitchd: fix the failing rows; `Operation not supported` on the bond usually means the LAG is not active",
                )
            }
        }
    }
}

/// `2020-03-19T11:42:17.028Z` (OVS log time, UTC) as a time.
pub fn parse_ovs_time(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), 1970-01-01 = 0.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    let ms: u64 = frac.get(..3.min(frac.len()))?.parse().ok()?;
    let ms = ms * 10u64.pow(3 - 3.min(frac.len()) as u32);
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::testkit::*;
    fn ovs_obs(version: &str, hw: bool, flows: Option<&str>) -> OvsObs {
        let row = ovsdb::OpenVswitch {
            uuid: "u".into(),
            ovs_version: Some(version.into()),
            db_version: None,
            other_config: [("hw-offload".to_string(), hw.to_string())]
                .into_iter()
                .collect(),
        };
        OvsObs {
            status: OvsStatus {
                db_sock: "/run/openvswitch/db.sock".into(),
                present: true,
                version: row.version(),
                hw_offload: Some(row.hw_offload()),
                row: Some(row),
                schema_version: Some("8.3.1".into()),
                vswitchd_version: flows.map(|_| "ovs-vswitchd (Open vSwitch) 3.1.0".into()),
                offloaded_flows: flows.map(ovsdb::parse_dump_flows),
                errors: vec![],
            },
            log: Ok(None),
        }
    }

    fn at(s: &str) -> SystemTime {
        parse_ovs_time(s).unwrap()
    }

    #[test]
    fn ovs_version_offload_and_flows() {
        let ports = OvsPorts {
            bonds: vec!["bond0".into()],
            representors: vec!["eth9".into(), "eth10".into()],
        };
        let now = at("2020-03-19T12:00:00Z");
        let seed_flows = "in_port(bond0),eth(src=98:5d:82:b5:d2:e5,dst=fa:16:3e:44:44:71),eth_type(0x8100),vlan(vid=540,pcp=0),encap(eth_type(0x0800),ipv4(frag=no)), packets:29, bytes:2842, used:0.550s, actions:pop_vlan,eth9\nin_port(eth9),eth(src=fa:16:3e:44:44:71,dst=00:1c:73:00:00:99),eth_type(0x0800),ipv4(frag=no), packets:29, bytes:2958, used:0.550s, actions:push_vlan(vid=540,pcp=0),bond0\n";
        let f = judge_ovs(
            &ovs_obs("2.12.0", true, Some(seed_flows)),
            true,
            &ports,
            now,
        );
        for c in ["ovs", "ovs-version", "ovs-hw-offload", "ovs-flows"] {
            assert_eq!(get(&f, c, "").outcome, Outcome::Pass, "{c}: {f:#?}");
        }
        assert_eq!(
            get(&f, "ovs-flows", "").detail,
            "2 offloaded flows; in on the bond: 1 (bond0: 1); in on representors: 1 (eth9: 1)"
        );
        assert_eq!(get(&f, "ovs-errors", "").outcome, Outcome::Skip);

        // No flows yet is not a failure.
        let f = judge_ovs(&ovs_obs("3.1.0", true, Some("")), true, &ports, now);
        let x = get(&f, "ovs-flows", "");
        assert_eq!(x.outcome, Outcome::Pass);
        assert!(x.detail.contains("flows appear once VMs send traffic"));

        // Old release, offload off: failures when VF-LAG wants offload, warnings otherwise.
        let f = judge_ovs(&ovs_obs("2.11.1", false, None), true, &ports, now);
        assert_eq!(get(&f, "ovs-version", "").outcome, Outcome::Fail);
        let h = get(&f, "ovs-hw-offload", "");
        assert_eq!(h.outcome, Outcome::Fail);
        assert!(h
            .hint
            .as_deref()
            .unwrap()
            .contains("vflag ovs-offload enable"));
        assert!(h
            .hint
            .as_deref()
            .unwrap()
            .contains("docker restart openvswitch_vswitchd"));
        assert_eq!(
            get(&f, "ovs-flows", "").outcome,
            Outcome::Warn,
            "vswitchd unreachable"
        );
        let f = judge_ovs(&ovs_obs("2.11.1", false, None), false, &ports, now);
        assert_eq!(get(&f, "ovs-version", "").outcome, Outcome::Warn);
        assert_eq!(get(&f, "ovs-hw-offload", "").outcome, Outcome::Warn);
    }

    #[test]
    fn recent_offload_errors_from_the_kolla_log_tail() {
        let t = Tree::new();
        t.write(
            "var/log/kolla/openvswitch/ovs-vswitchd.log",
            include_str!("../../tests/fixtures/status/ovs-vswitchd.log"),
        );
        let mut o = observe_ovs(
            &t.root(),
            Path::new("/run/openvswitch/db.sock"),
            OVS_TIMEOUT,
        );
        assert!(!o.status.present);
        let (path, errs) = o.log.clone().unwrap().unwrap();
        assert_eq!(path, Path::new(OVS_LOGS[0]));
        assert_eq!(errs.len(), 2);
        o.status = ovs_obs("3.1.0", true, Some("")).status;
        let ports = OvsPorts {
            bonds: vec!["bond0".into()],
            representors: vec![],
        };
        // 11:42 on bond0 is recent at 12:00: a failure of VF-LAG offload.
        let f = judge_ovs(&o, true, &ports, at("2020-03-19T12:00:00Z"));
        let e = get(&f, "ovs-errors", "");
        assert_eq!(e.outcome, Outcome::Fail);
        assert!(
            e.detail
                .starts_with("1 \"failed to offload flow\" errors in the last 60 min"),
            "{e:?}"
        );
        assert!(
            e.detail
                .ends_with("(ports bond0); last: Operation not supported: bond0"),
            "{e:?}"
        );
        // Errors on ports that are not the LAG's: a warning.
        let other = OvsPorts {
            bonds: vec!["bond1".into()],
            representors: vec![],
        };
        let f = judge_ovs(&o, true, &other, at("2020-03-19T12:00:00Z"));
        assert_eq!(get(&f, "ovs-errors", "").outcome, Outcome::Warn);
        // At 10:00 the eth4 error (09:30) is recent; a line stamped after "now" (clock skew)
        // is counted too rather than hidden.
        let f = judge_ovs(&o, true, &ports, at("2020-03-19T10:00:00Z"));
        let e = get(&f, "ovs-errors", "");
        assert!(
            e.detail.starts_with("2 \"failed to offload flow\""),
            "{e:?}"
        );
        // A day later nothing is recent.
        let f = judge_ovs(&o, true, &ports, at("2020-03-20T12:00:00Z"));
        assert_eq!(get(&f, "ovs-errors", "").outcome, Outcome::Pass);
    }

    #[test]
    fn ovs_log_times() {
        assert_eq!(
            at("2020-03-19T11:42:17.028Z")
                .duration_since(UNIX_EPOCH)
                .unwrap(),
            Duration::from_millis(1_584_618_137_028)
        );
        assert_eq!(at("1970-01-01T00:00:00Z"), UNIX_EPOCH);
        assert_eq!(
            at("2024-02-29T00:00:00.5Z")
                .duration_since(UNIX_EPOCH)
                .unwrap(),
            Duration::from_millis(1_709_164_800_500)
        );
        assert_eq!(parse_ovs_time("2020-13-01T00:00:00Z"), None);
        assert_eq!(parse_ovs_time("yesterday"), None);
    }
}
