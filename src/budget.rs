//! How long a stage may still run before systemd would kill its unit, so that every wait ends
//! with vflag's own error (what it waited for, how long, what to do) first.
//!
//! systemd tells a service nothing about its start timeout, so each unit passes the same number
//! twice: `TimeoutStartSec=N` and `Environment=VFLAG_DEADLINE_SEC=N` (the packaged units and
//! the generator's drop-ins write both). The clock starts with the unit's first vflag process
//! (since issue 20 the units start one, `vflag setup`/`rebind`/`hotplug`): it records its `INVOCATION_ID` and
//! CLOCK_MONOTONIC start in `/run/vflag/deadline-<unit>` (the unit from the process's cgroup:
//! one file per unit, overwritten by its next start, so restarts leave nothing behind), and the
//! later processes of the same start, if any, count from there. Every wait is bounded by
//! min(its own cap, time left − [`MARGIN`]); the margin leaves time for the failure to be
//! reported and for `ExecStopPost=` to hand the PF over.
//!
//! Legitimate slow work (mlx5 takes ~90 s to switch 60 VFs to switchdev, ~65 s to create 125
//! VFs) extends the unit's timeout with sd_notify `EXTEND_TIMEOUT_USEC=` in [`STEP`]s while
//! progress is made, never beyond `setup-timeout-max` from the unit's start.

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::paths::Root;

/// The unit's start timeout in seconds, written next to `TimeoutStartSec=`.
pub const DEADLINE_ENV: &str = "VFLAG_DEADLINE_SEC";
/// Kept free before the unit's deadline: report the failure and hand the PF over (at most a few
/// D-Bus calls; `ExecStopPost=` runs too).
pub const MARGIN: Duration = Duration::from_secs(10);
/// One extension of the unit's timeout.
pub const STEP: Duration = Duration::from_secs(30);
/// Poll interval of the waits.
const POLL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Budget(Arc<Inner>);

struct Inner {
    /// The unit's start (or this process's, outside systemd).
    start: Instant,
    /// The unit's start timeout; `None`: not known (run by hand), only the caps bound the waits.
    base: Option<Duration>,
    /// Extensions never go beyond `start + ceiling`.
    ceiling: Duration,
    /// The latest extension (absolute).
    extended: Mutex<Option<Instant>>,
    /// Where the start is recorded for the unit's other processes, and this start's id.
    anchor: Option<(PathBuf, String)>,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Budget(base {:?}, left {:?})", self.0.base, self.left())
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::unlimited()
    }
}

fn monotonic_ms() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    Some(t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
}

impl Budget {
    /// No unit deadline (run by hand): only each wait's own cap applies.
    pub fn unlimited() -> Self {
        Budget::new(Instant::now(), None, Duration::ZERO, None)
    }

    /// A deadline `base` from now, extendable up to `ceiling` from now (tests).
    pub fn with_deadline(base: Duration, ceiling: Duration) -> Self {
        Budget::new(Instant::now(), Some(base), ceiling, None)
    }

    fn new(
        start: Instant,
        base: Option<Duration>,
        ceiling: Duration,
        anchor: Option<(PathBuf, String)>,
    ) -> Self {
        Budget(Arc::new(Inner {
            start,
            base,
            ceiling,
            extended: Mutex::new(None),
            anchor,
        }))
    }

    /// From `VFLAG_DEADLINE_SEC` and the start recorded by this unit start's first vflag process
    /// (recorded now if this is the first). Without the variable: [`Budget::unlimited`].
    pub fn from_env(root: &Root, ceiling: Duration) -> Self {
        let base = std::env::var(DEADLINE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let Some(base) = base else {
            return Budget::unlimited();
        };
        let id = std::env::var("INVOCATION_ID").unwrap_or_default();
        Budget::of_start(root, base, &id, ceiling)
    }

    /// The budget of the unit start `id` (`INVOCATION_ID`), recorded by its first process.
    fn of_start(root: &Root, base: Duration, id: &str, ceiling: Duration) -> Self {
        let now = Instant::now();
        let Some(mono) = monotonic_ms() else {
            return Budget::new(now, Some(base), ceiling, None);
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Budget::new(now, Some(base), ceiling, None);
        }
        let Some(unit) = own_unit(root) else {
            return Budget::new(now, Some(base), ceiling, None);
        };
        let anchor = root.deadline_file(&unit);
        let recorded = fs::read_to_string(&anchor).ok().and_then(|s| {
            let mut words = s.split_whitespace();
            if words.next() != Some(id) {
                return None; // an earlier start of this unit
            }
            let mut it = words.map(|w| w.parse::<u64>().ok());
            Some((it.next()??, it.next().flatten()))
        });
        let anchor = (anchor, id.to_string());
        match recorded {
            Some((start_ms, ext_ms)) if start_ms <= mono => {
                let ago = |ms: u64| now.checked_sub(Duration::from_millis(mono.saturating_sub(ms)));
                let start = ago(start_ms).unwrap_or(now);
                let b = Budget::new(start, Some(base), ceiling, Some(anchor));
                // An extension an earlier process of this start sent (in the future, or past).
                if let Some(e) = ext_ms {
                    let at = if e >= mono {
                        now.checked_add(Duration::from_millis(e - mono))
                    } else {
                        ago(e)
                    };
                    *b.0.extended.lock().unwrap() = at;
                }
                b
            }
            _ => {
                let _ = fs::create_dir_all(root.run_dir());
                let _ = fs::write(&anchor.0, format!("{} {mono}\n", anchor.1));
                Budget::new(now, Some(base), ceiling, Some(anchor))
            }
        }
    }

    /// The unit's start timeout as configured (for messages).
    pub fn base(&self) -> Option<Duration> {
        self.0.base
    }

    /// When systemd would kill the unit, as far as vflag knows (extensions included).
    fn deadline(&self) -> Option<Instant> {
        let base = self.0.start + self.0.base?;
        Some(match *self.0.extended.lock().unwrap() {
            Some(e) if e > base => e,
            _ => base,
        })
    }

    /// Time left for work: until the deadline, less [`MARGIN`]. `None`: unlimited.
    pub fn left(&self) -> Option<Duration> {
        self.deadline().map(|d| {
            d.saturating_duration_since(Instant::now())
                .saturating_sub(MARGIN)
        })
    }

    /// Ask systemd for [`STEP`] more (never past `setup-timeout-max` from the start). Returns
    /// whether the deadline moved. Outside systemd (no `NOTIFY_SOCKET`) only the deadline
    /// kept here moves, so tests see the same arithmetic.
    pub fn extend(&self) -> bool {
        let Some(deadline) = self.deadline() else {
            return false;
        };
        let now = Instant::now();
        let target = (now + STEP + MARGIN).min(self.0.start + self.0.ceiling);
        if target <= deadline {
            return false;
        }
        let usec = target.saturating_duration_since(now).as_micros();
        use libsystemd::daemon::{notify, NotifyState};
        let _ = notify(
            false,
            &[NotifyState::Other(format!("EXTEND_TIMEOUT_USEC={usec}"))],
        );
        *self.0.extended.lock().unwrap() = Some(target);
        if let (Some((anchor, id)), Some(mono)) = (&self.0.anchor, monotonic_ms()) {
            let start_ms = mono.saturating_sub(now.duration_since(self.0.start).as_millis() as u64);
            let ext_ms = mono + target.saturating_duration_since(now).as_millis() as u64;
            let _ = fs::write(anchor, format!("{id} {start_ms} {ext_ms}\n"));
        }
        true
    }

    /// Extend when less than half a step is left (progress was just seen).
    fn keep_going(&self) {
        if self.left().is_some_and(|l| l < STEP / 2) {
            self.extend();
        }
    }

    /// One `systemctl status` line.
    pub fn status(&self, line: &str) {
        crate::log::status(line);
    }

    /// Poll `f` until it answers, bounded by min(`cap`, time left). `f` returns `Ok(Ok(v))` when
    /// done, `Ok(Err(progress))` while waiting: a growing `progress` (VFs or representors seen so
    /// far) extends the unit's timeout. Errors of `f` end the wait at once.
    pub fn wait<T, E>(
        &self,
        what: &str,
        cap: Duration,
        mut f: impl FnMut() -> Result<Result<T, u64>, E>,
    ) -> Result<T, Waited<E>> {
        let begin = Instant::now();
        let mut seen = None;
        loop {
            match f().map_err(Waited::Failed)? {
                Ok(v) => return Ok(v),
                Err(p) => {
                    if seen.is_some_and(|s| p > s) {
                        self.keep_going();
                    }
                    seen = Some(p);
                }
            }
            let by_cap = cap.saturating_sub(begin.elapsed());
            let left = self.left();
            let by_unit = left.is_some_and(|l| l < by_cap);
            let rest = left.map_or(by_cap, |l| l.min(by_cap));
            if rest.is_zero() {
                return Err(Waited::Expired(Expired {
                    what: what.to_string(),
                    waited: begin.elapsed(),
                    unit_timeout: self.0.base.filter(|_| by_unit),
                }));
            }
            std::thread::sleep(POLL.min(rest));
        }
    }

    /// Run a blocking call (a devlink mode change) while extending the unit's timeout every
    /// time less than half a step is left, up to the ceiling.
    pub fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    self.keep_going();
                    std::thread::sleep(POLL * 5);
                }
            });
            let r = f();
            done.store(true, Ordering::Relaxed);
            r
        })
    }
}

/// The unit this process runs in: the last component of its cgroup path
/// (`0::/system.slice/system-vflag.slice/vflag@ens3f0.service`), when it is a service.
fn own_unit(root: &Root) -> Option<String> {
    let cgroup = fs::read_to_string(root.path("/proc/self/cgroup")).ok()?;
    cgroup
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .find(|u| u.ends_with(".service") && !u.starts_with('.'))
        .map(str::to_string)
}

/// Why a bounded wait ended without an answer.
#[derive(Debug)]
pub enum Waited<E> {
    Failed(E),
    Expired(Expired),
}

impl<E: fmt::Display> fmt::Display for Waited<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waited::Failed(e) => e.fmt(f),
            Waited::Expired(e) => e.fmt(f),
        }
    }
}

/// A wait that ran out of time.
#[derive(Debug, Clone)]
pub struct Expired {
    pub what: String,
    pub waited: Duration,
    /// Set when the unit's timeout (not the wait's own cap) ended the wait.
    pub unit_timeout: Option<Duration>,
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gave up waiting for {} after {:.0} s",
            self.what,
            self.waited.as_secs_f64()
        )?;
        if let Some(t) = self.unit_timeout {
            write!(
                f,
                " (the unit's start timeout of {} s, TimeoutStartSec= and {DEADLINE_ENV}=, ends in {} s; vflag stops first)",
                t.as_secs(),
                MARGIN.as_secs()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_end_before_the_unit_deadline_with_their_own_error() {
        let b = Budget::with_deadline(MARGIN + Duration::from_millis(300), MARGIN);
        let t = Instant::now();
        let r: Result<(), Waited<()>> = b.wait("x", Duration::from_secs(60), || Ok(Err(0)));
        let e = match r {
            Err(Waited::Expired(e)) => e,
            _ => panic!(),
        };
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(e.unit_timeout.is_some());
        assert!(e.to_string().contains("gave up waiting for x"), "{e}");
        // its own cap, when shorter, ends it without blaming the unit
        let b = Budget::with_deadline(MARGIN + Duration::from_secs(10), MARGIN);
        let r: Result<(), Waited<()>> = b.wait("y", Duration::from_millis(50), || Ok(Err(0)));
        assert!(matches!(
            r,
            Err(Waited::Expired(Expired {
                unit_timeout: None,
                ..
            }))
        ));
    }

    /// Each packaged unit passes its start timeout to vflag: the two numbers must not drift.
    /// The processes of one unit start share its start; the unit's next start begins anew in
    /// the same file (restarts leave no file behind).
    #[test]
    fn one_anchor_file_per_unit_shared_by_the_processes_of_one_start() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(
            dir.path().join("proc/self/cgroup"),
            "0::/system.slice/system-vflag.slice/vflag@ens3f0.service\n",
        )
        .unwrap();
        let base = Duration::from_secs(100);
        let first = Budget::of_start(&root, base, "aa01", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1100));
        let same = Budget::of_start(&root, base, "aa01", Duration::ZERO);
        let next = Budget::of_start(&root, base, "bb02", Duration::ZERO);
        let left = |b: &Budget| b.left().unwrap().as_secs();
        // 100 s less the margin: 89.x s for a new start, 88.x s one second into it.
        assert!(
            left(&same) <= 88,
            "the same start counts from its first process"
        );
        assert_eq!(left(&same), left(&first));
        assert!(left(&next) >= 89, "a new start begins anew");
        let files: Vec<_> = std::fs::read_dir(dir.path().join("run/vflag"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, ["deadline-vflag@ens3f0.service"]);
    }

    #[test]
    fn packaged_units_pass_their_start_timeout() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
        for unit in [
            "vflag@.service",
            "vflag-rebind@.service",
            "vflag-hotplug@.service",
        ] {
            let text = fs::read_to_string(dir.join(unit)).unwrap();
            let val = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim_end_matches('s').to_string())
            };
            let t = val("TimeoutStartSec=");
            assert!(t.is_some(), "{unit}");
            assert_eq!(t, val(&format!("Environment={DEADLINE_ENV}=")), "{unit}");
        }
    }

    #[test]
    fn progress_extends_up_to_the_ceiling_only() {
        let b = Budget::with_deadline(MARGIN + Duration::from_millis(200), STEP * 2);
        let mut n = 0;
        let r: Result<u64, Waited<()>> = b.wait("reps", Duration::from_secs(60), || {
            n += 1;
            Ok(if n > 10 { Ok(n) } else { Err(n) })
        });
        assert_eq!(r.unwrap(), 11);
        assert!(b.left().unwrap() > STEP / 2, "extended: {b:?}");
        // no progress: no extension beyond what was granted; the ceiling caps extensions
        let c = Budget::with_deadline(MARGIN, MARGIN);
        assert!(!c.extend());
        assert!(Budget::unlimited().left().is_none());
    }
}
