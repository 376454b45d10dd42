//! Hot-plug: what udev learns from vflag about a net device, and the hold/release protocol
//! between udev, the early stage and the network stack.
//!
//! # The problem
//! At boot, unit ordering protects a PF: `vflag@<pf>.service` (oneshot) runs before
//! `network-pre.target`, so NetworkManager / systemd-networkd / network.service start after the
//! PF is in switchdev. After boot (NIC hot-plugged, driver reloaded, netdev re-registered) the
//! stack sees the PF the moment it appears and would enslave it into the bond before vflag has
//! set it up — and a bond port cannot change eswitch mode.
//!
//! # The design
//! 1. udev (`udev-rules/81-vflag.rules`) runs `vflag udev-import $name` on every net device
//!    `add`/`change`/`move`. [`udev_import`] answers from the configuration:
//!    - a configured PF: `VFLAG_PF=1`, `VFLAG_LAG`, `VFLAG_INSTANCE`, `VFLAG_UNIT` (the rule
//!      appends it to `SYSTEMD_WANTS`) and, only in [`PfState::Pending`], the hold:
//!      `VFLAG_HOLD=1`, `NM_UNMANAGED=1` (NetworkManager) and/or `ID_NET_MANAGED_BY=vflag`
//!      (systemd-networkd 255+ manages a link only if that property is unset or
//!      `io.systemd.Network`; NetworkManager 1.46+ treats any other value like `NM_UNMANAGED`;
//!      networkd before 255 has no udev-level hold at all).
//!    - a VF netdev of a configured PF: `VFLAG_VF=1`, `NM_UNMANAGED=1`,
//!      `ID_NET_MANAGED_BY=vflag` for good: VFs belong to guests, never to the host stack.
//!    - anything else: nothing.
//!
//!    **A port with a master is never held**, whatever its state below: a PF (or VF) whose
//!    sysfs `master` link exists gets `VFLAG_MASTER=<master>` and none of `VFLAG_HOLD`,
//!    `NM_UNMANAGED`, `ID_NET_MANAGED_BY`, and no `VFLAG_UNIT`/`VFLAG_LATE_UNIT`. A `change`
//!    event on a live bond port (`udevadm trigger`, a LAG added to the configuration of a
//!    running host) must not take it from its stack; a netdev that is added has no master yet.
//!
//!    When is a PF held? Only when someone is sure to release it ([`state`]):
//!    - [`PfState::BeforeProtocol`] (no `/run/vflag/hotplug/` yet: boot coldplug before any
//!      early stage started and before any late stage ran): no hold — unit ordering protects
//!      the boot, a hold adds only risk.
//!    - The boot form: an early stage that begins at boot ([`booting`]: `network-pre.target` not
//!      active, no stack running) creates the directory with [`BOOT_FLAG`]; while it is there,
//!      a PF with no marker is still [`PfState::BeforeProtocol`] (the stacks are ordered after
//!      every early stage, so a hold would only make the stage wait for udev to clear it, in
//!      front of `network-pre.target`), and only a PF whose stage gave up absent
//!      ([`mark_absent`]) is [`PfState::Pending`]. The late stage's [`arm`] ends the boot form.
//!    - [`PfState::Pending`] (the directory exists, no marker for this PF): the early stage is
//!      running, or its unit is failed/inactive and the wanted `vflag@<pf>.service` will run:
//!      hold; that run releases it. `VFLAG_LATE_UNIT` names `vflag-rebind@<pf>.service`, which
//!      the rule wants too: a PF absent at boot (its early unit never ran, its late stage
//!      failed) is then set up and its VFs bound back when it is plugged in. The late stage
//!      creates the directory ([`arm`]) when it runs, so this holds even when every configured
//!      PF was absent at boot and no early stage ever began.
//!    - [`PfState::Finished`] (marker = this ifindex): no hold.
//!    - [`PfState::Readded`] (marker = another ifindex: the netdev came back after the early
//!      stage finished this boot): `vflag@` is `RemainAfterExit=yes`, so wanting it again starts
//!      nothing and a hold would never be released. Held only when a `vflag-hotplug@.service`
//!      template (one that runs on every start) is installed; `VFLAG_UNIT` then names it.
//!      Otherwise `VFLAG_READD=1` and no hold: the stack takes the port as it is (bond up, no
//!      offload) — a degraded LAG, never a dead one.
//! 2. The early stage, at its start, calls [`begin`] (creates `/run/vflag/hotplug/`, at boot in
//!    its boot form, forgets this PF's marker) and, if a stack runs, `bus::hold` (explicit NetworkManager
//!    `Managed=false` for a PF that was already managed, e.g. on a manual restart).
//! 3. The early stage, at its END — on success AND on failure, because a PF left held is a
//!    bond that never comes up, while a PF enslaved in legacy mode is merely a LAG without
//!    offload — calls [`finish`] and then `bus::release`. On failure (including a failed
//!    `ExecStartPre=` check, when `ExecStart=` never runs) only `ExecStopPost=` runs: it must do
//!    the same when `$SERVICE_RESULT` is not `success` (and nothing on a clean stop at
//!    shutdown).
//!    - [`finish`] writes the marker `/run/vflag/hotplug/<pf>` (content: the ifindex), then,
//!      if the udev database still shows vflag's hold for that ifindex, or udev still has
//!      events queued (one of them may have read "pending" before the marker and write its
//!      hold later), asks udev to re-run the rules (`change` written to
//!      `/sys/class/net/<pf>/uevent`: udev runs it after the device's events in flight). If
//!      the database showed the hold, it waits, bounded, until it no longer does: the hold
//!      lives in the udev database, so clearing it there is what makes a stack that starts (or
//!      restarts) later see the device as its own. If it showed none, it does not wait for the
//!      `change` (that cost every boot up to 2 s); a late hold that a stack still sees is handed
//!      over by the late stage ([`release_stale_hold`]).
//!    - `bus::release` then hands the port over explicitly: NetworkManager `Managed=true`
//!      (an explicit D-Bus decision overrides the udev flag, should NM still hold it) and
//!      activation of the bond-port profile; networkd `ReconfigureLink`; network-scripts ifup.
//!
//! The marker is keyed by ifindex, so no `remove` rule is needed.
//!
//! network-scripts (RHEL/Rocky ifcfg) does not act on hot-plug by itself, so nothing holds it
//! (neither does Debian ifupdown for `auto` stanzas; an `allow-hotplug` stanza is brought up by
//! ifupdown's own udev helper at once, unheld: `vflag check` warns about it);
//! its ifcfg files should say `NM_CONTROLLED=no` if NetworkManager also runs (else configure
//! `network-stack = networkmanager`), and `ONBOOT=yes` for the ports so `network.service`
//! enslaves them at boot (ordered after the early stage by the generator).
//!
//! Nothing here is long-running: [`udev_import`] only reads the config, a few sysfs files and
//! the marker.

use crate::bus::{self, Bus, BusError, Outcome, Stack};
use crate::config::{Lag, NetworkStack, Plan};
use crate::device::portname::PortName;
use crate::device::sysfs;
use crate::names::IfName;
use crate::paths::Root;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// Markers: `/run/vflag/hotplug/<pf>` ([`Root::hotplug_dir`]) holds the ifindex the early
// stage finished with.
/// udev's database of net devices: `/run/udev/data/n<ifindex>`, lines `E:KEY=VALUE`.
pub const UDEV_DB_DIR: &str = "/run/udev/data";
// Re-added PFs are held only when a unit file of HOTPLUG_TEMPLATE is installed.
pub use crate::names::{EARLY_TEMPLATE, HOTPLUG_TEMPLATE, LATE_TEMPLATE};
/// Where udev-import looks for unit files.
pub const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
/// The value vflag gives `ID_NET_MANAGED_BY` while it holds a device.
pub const MANAGED_BY: &str = "vflag";

/// What udev tells vflag about the event (udev passes the device's properties to the program
/// as environment: `DEVPATH`, `IFINDEX`, `ACTION`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdevEvent {
    /// `$name`: the name the device has or is about to get (after the naming rules).
    pub name: String,
    /// `DEVPATH` (e.g. `/devices/pci0000:00/.../net/eth3`): sysfs is read through it, because
    /// during a rename the netdev is not yet reachable under `/sys/class/net/<name>`.
    pub devpath: Option<String>,
    pub ifindex: Option<u32>,
}

impl UdevEvent {
    /// The event as udev describes it in the program's environment.
    pub fn from_env(name: &str) -> UdevEvent {
        UdevEvent {
            name: name.to_string(),
            devpath: std::env::var("DEVPATH").ok().filter(|d| !d.is_empty()),
            ifindex: std::env::var("IFINDEX")
                .ok()
                .and_then(|i| i.trim().parse().ok()),
        }
    }

    fn sysdir(&self, root: &Root) -> PathBuf {
        match &self.devpath {
            Some(d) if !d.contains("..") => root.path(format!("/sys{d}")),
            _ => sysfs::netdev_dir(root, &self.name),
        }
    }
}

/// `vflag udev-import <ifname>`: udev properties for a net device, from the configuration.
/// Reads `DEVPATH`/`IFINDEX` from the environment udev gives the program.
pub fn udev_import(root: &Root, plan: &Plan, ifname: &str) -> Vec<(String, String)> {
    udev_import_event(root, plan, &UdevEvent::from_env(ifname))
}

/// The pure form of [`udev_import`].
pub fn udev_import_event(root: &Root, plan: &Plan, ev: &UdevEvent) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(name) = IfName::new(&ev.name) else {
        return out;
    };
    let dir = ev.sysdir(root);
    if dir.join("device/physfn").exists() {
        vf_properties(plan, &dir, &mut out);
        return out;
    }
    let Some(lag) = plan.lag_of(&name) else {
        return out;
    };
    // A representor (pfNvfM, cNpfNvfM, pfNsfM) may share a PF's PCI parent; never a PF.
    if is_representor(&read_trim(&dir.join("phys_port_name")).unwrap_or_default()) {
        return out;
    }
    out.push(kv("VFLAG_PF", "1"));
    out.push(kv("VFLAG_LAG", &sanitize(&lag.name)));
    let instance = name.unit_instance();
    if instance.contains('\\') {
        // systemd versions differ in whether SYSTEMD_WANTS keeps backslashes: a wrong unit name
        // would leave the hold without anyone to release it. No unit, no hold; boot-time
        // ordering still covers this PF, hot-plug does not.
        out.push(kv("VFLAG_SKIP", "instance-needs-escaping"));
        return out;
    }
    out.push(kv("VFLAG_INSTANCE", &instance));
    // A port that already has a master (a bond, in life) is never held, whatever the protocol
    // state: NM_UNMANAGED / ID_NET_MANAGED_BY on a `change` event would take a live bond port
    // away from its stack. No set-up unit is wanted for it either: the early stage refuses an
    // enslaved port ("is enslaved", unit failed) or, if it is already set up, changes nothing;
    // starting it (and the late stage after it) from a `change` (e.g. a LAG added to the
    // configuration of a running host) adds a failed unit and a hand-over of a port that nobody
    // took from its stack. The boot's own units still run (the generator pulls them in), and a
    // new netdev has no master when it is added.
    if let Some(master) = master_at(&dir) {
        out.push(kv("VFLAG_MASTER", &sanitize(&master)));
        return out;
    }
    let ifindex = ev
        .ifindex
        .or_else(|| read_trim(&dir.join("ifindex")).and_then(|s| s.parse().ok()));
    if wanted_units(root, &name, ifindex, &mut out) {
        hold_properties(lag.network_stack, &mut out);
    }
    out
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A VF netdev (has device/physfn): unmanaged for good if its PF is configured.
fn vf_properties(plan: &Plan, dir: &Path, out: &mut Vec<(String, String)>) {
    let pf_stack = list_names(&dir.join("device/physfn/net"))
        .iter()
        .filter_map(|n| IfName::new(n).ok())
        .find_map(|n| plan.lag_of(&n).map(|l| l.network_stack));
    let Some(stack) = pf_stack else {
        return;
    };
    out.push(kv("VFLAG_VF", "1"));
    // VFs of a VF-LAG belong to guests and are never host bond ports; one that was
    // enslaved on the host anyway (e.g. before its PF was configured) stays with its
    // stack: a port with a master is never held (see udev_import_event).
    if let Some(master) = master_at(dir) {
        out.push(kv("VFLAG_MASTER", &sanitize(&master)));
    } else if stack != NetworkStack::None {
        out.push(kv("NM_UNMANAGED", "1"));
        out.push(kv("ID_NET_MANAGED_BY", MANAGED_BY));
    }
}

/// The units a configured PF without a master wants (`VFLAG_UNIT`, `VFLAG_LATE_UNIT`), by where
/// it stands in the protocol this boot; true when it is to be held until that unit releases it.
fn wanted_units(
    root: &Root,
    name: &IfName,
    ifindex: Option<u32>,
    out: &mut Vec<(String, String)>,
) -> bool {
    let early_unit = name.early_unit();
    match state(root, name, ifindex) {
        // No early stage ran the protocol yet this boot (boot coldplug): unit ordering holds
        // the stacks back; a udev hold here would only be a risk.
        PfState::BeforeProtocol | PfState::Finished => {
            out.push(kv("VFLAG_UNIT", &early_unit));
            false
        }
        // The early stage runs (or will run: its unit is failed/inactive) for this PF and
        // clears the hold at its end. The late stage is wanted too: for a PF that was absent
        // at boot it already ran and failed ("does not exist"); started again, it runs after
        // the early stage (After=vflag@) and binds the VFs back once the bond is there. While
        // the boot's late stage is still ahead or already active, wanting it changes nothing.
        PfState::Pending => {
            out.push(kv("VFLAG_UNIT", &early_unit));
            out.push(kv("VFLAG_LATE_UNIT", &name.late_unit()));
            true
        }
        // Re-added after the early stage finished this boot. vflag@ is RemainAfterExit=yes:
        // wanting it again starts nothing, so a hold would never be released. Hold only if a
        // unit that runs on every start is installed.
        PfState::Readded => {
            out.push(kv("VFLAG_READD", "1"));
            if template_installed(root, HOTPLUG_TEMPLATE) {
                out.push(kv("VFLAG_UNIT", &name.unit(HOTPLUG_TEMPLATE)));
                true
            } else {
                out.push(kv("VFLAG_UNIT", &early_unit));
                false
            }
        }
    }
}

/// The hold itself: the properties that keep the LAG's network stack(s) off the port.
fn hold_properties(stack: NetworkStack, out: &mut Vec<(String, String)>) {
    let (nm, networkd) = match stack {
        NetworkStack::Auto => (true, true),
        NetworkStack::NetworkManager => (true, false),
        NetworkStack::SystemdNetworkd => (false, true),
        NetworkStack::NetworkScripts | NetworkStack::None => (false, false),
    };
    if nm || networkd {
        out.push(kv("VFLAG_HOLD", "1"));
    }
    if nm {
        out.push(kv("NM_UNMANAGED", "1"));
    }
    if networkd {
        out.push(kv("ID_NET_MANAGED_BY", MANAGED_BY));
    }
}

/// Where a PF stands in the hold/release protocol this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PfState {
    /// `/run/vflag/hotplug/` does not exist: no early stage has called [`begin`] and no late
    /// stage has called [`arm`] this boot (boot coldplug).
    BeforeProtocol,
    /// No marker for this PF: its early stage has not finished this boot (it runs, or will run
    /// when wanted: its unit is inactive or failed, e.g. the PF was absent at boot).
    Pending,
    /// The marker names this netdev (ifindex), or the ifindex is unknown: finished.
    Finished,
    /// The marker names another ifindex: finished with an earlier netdev of this name.
    Readded,
}

/// Arm the protocol from the late stage: once a late stage has run this boot, the boot's unit
/// ordering no longer keeps any stack away from a PF that appears later, so a PF with no
/// marker is [`PfState::Pending`] (held, its early stage wanted) rather than
/// [`PfState::BeforeProtocol`]. Without this, a NIC absent at boot (every configured PF
/// missing, so no early stage ever called [`begin`]) would be bonded unheld when plugged in.
/// It also ends the boot form of the protocol ([`BOOT_FLAG`]): from the late stage on, no unit
/// ordering keeps a stack away from a PF whose early stage has not finished.
pub fn arm(root: &Root) -> std::io::Result<()> {
    std::fs::create_dir_all(root.hotplug_dir())?;
    match std::fs::remove_file(root.hotplug_dir().join(BOOT_FLAG)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The PF's [`PfState`].
pub fn state(root: &Root, pf: &IfName, ifindex: Option<u32>) -> PfState {
    if !root.hotplug_dir().is_dir() {
        return PfState::BeforeProtocol;
    }
    let Some(content) = read_trim(&marker(root, pf)) else {
        return if root.hotplug_dir().join(BOOT_FLAG).exists() {
            PfState::BeforeProtocol
        } else {
            PfState::Pending
        };
    };
    if content == ABSENT {
        return PfState::Pending;
    }
    match (ifindex, content.parse::<u32>().ok()) {
        (Some(now), Some(then)) if now != then => PfState::Readded,
        _ => PfState::Finished,
    }
}

/// In `/run/vflag/hotplug/` while the boot's early stages run before any network stack can
/// start ([`bus::before_network`]): a PF with no marker is then not held. Unit ordering keeps
/// the stacks back, and a hold written by an event of the set-up's own making (the rename's
/// `move`, run after the set-up began) cost the stage a wait for udev at its end, up to
/// [`UDEV_WAIT`], in front of `network-pre.target`. Removed by [`arm`] (the late stage).
pub const BOOT_FLAG: &str = ".boot";

/// The marker of a PF whose early stage gave up because it was absent ([`mark_absent`]).
const ABSENT: &str = "absent";

/// Is this the boot, with every network stack still ordered behind the early stages? Asks over
/// D-Bus ([`bus::before_network`]); no bus is "no" (hold as after boot).
pub fn booting(timeout: Duration) -> bool {
    Bus::system(timeout).is_ok_and(|b| bus::before_network(&b))
}

/// Is the template installed and not masked? The first directory (in systemd's order) that has
/// the file decides: a mask (a link to `/dev/null`, or an empty file) there means systemd would
/// refuse to start the unit, and a hold nobody releases would keep the port out of the bond.
fn template_installed(root: &Root, template: &str) -> bool {
    let Some(p) = UNIT_DIRS
        .iter()
        .map(|d| root.path(format!("{d}/{template}.service")))
        .find(|p| p.symlink_metadata().is_ok())
    else {
        return false;
    };
    let masked = std::fs::read_link(&p).is_ok_and(|t| t == Path::new("/dev/null"))
        || std::fs::metadata(&p).map_or(true, |m| m.len() == 0);
    !masked
}

/// `KEY=VALUE` lines as `IMPORT{program}` reads them.
pub fn format_properties(props: &[(String, String)]) -> String {
    props.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn is_representor(phys_port_name: &str) -> bool {
    PortName::parse(phys_port_name.trim()).is_representor()
}

/// Keep a value safe for udev's property parser: `[A-Za-z0-9._@:-]`, others become `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._@:-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The master (bond, bridge, OVS datapath) of the netdev whose sysfs directory is `dir`, from
/// its `master` link. A link that cannot be read counts as a master: a hold on a port that may
/// be enslaved risks the bond, no hold risks only a degraded LAG.
fn master_at(dir: &Path) -> Option<String> {
    sysfs::link_basename(&dir.join("master")).unwrap_or_else(|_| Some("(unreadable)".into()))
}

fn read_trim(p: &Path) -> Option<String> {
    sysfs::read_attr(p).ok().flatten()
}

fn list_names(dir: &Path) -> Vec<String> {
    sysfs::list_dir(dir)
}

/// The marker file of a PF.
pub fn marker(root: &Root, pf: &IfName) -> PathBuf {
    root.hotplug_dir().join(pf.as_str())
}

/// Has the early stage finished with this netdev this boot? A marker for another ifindex (the
/// netdev was re-added) does not count; with no ifindex known, any marker counts.
pub fn finished(root: &Root, pf: &IfName, ifindex: Option<u32>) -> bool {
    state(root, pf, ifindex) == PfState::Finished
}

/// Start of the early stage: forget that it finished (a restart must hold again on re-add).
/// At boot ([`booting`]) the protocol starts in its boot form ([`BOOT_FLAG`]): no hold for a
/// PF with no marker until the late stage [`arm`]s it.
pub fn begin(root: &Root, pf: &IfName, at_boot: bool) -> std::io::Result<()> {
    open_protocol(root, at_boot)?;
    match std::fs::remove_file(marker(root, pf)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Create `/run/vflag/hotplug/`, at boot with [`BOOT_FLAG`] (only when it is created now: a
/// directory that exists without the flag was armed, and stays so).
fn open_protocol(root: &Root, at_boot: bool) -> std::io::Result<()> {
    let dir = root.hotplug_dir();
    if at_boot && !dir.is_dir() {
        std::fs::create_dir_all(root.run_dir())?;
        // Flag first, then the directory by rename: udev never sees the directory without it.
        // Per process: the early stages of both PFs start at boot side by side.
        let tmp = root
            .run_dir()
            .join(format!(".hotplug.new.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp)?;
        std::fs::write(tmp.join(BOOT_FLAG), "")?;
        match std::fs::rename(&tmp, &dir) {
            Ok(()) => return Ok(()),
            // Another early stage made it meanwhile: use theirs.
            Err(_) if dir.is_dir() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => return Err(e),
        }
    }
    std::fs::create_dir_all(dir)
}

/// The early stage gave up on an absent PF: from now on it is a hot-plug, held when it appears
/// (also during the boot, unlike a PF with no marker) and set up by its wanted early unit.
pub fn mark_absent(root: &Root, pf: &IfName, at_boot: bool) -> std::io::Result<()> {
    if !at_boot {
        arm(root)?;
    }
    open_protocol(root, at_boot)?;
    let tmp = root.hotplug_dir().join(format!(".{pf}.new"));
    std::fs::write(&tmp, format!("{ABSENT}\n"))?;
    std::fs::rename(&tmp, marker(root, pf))
}

/// What [`finish`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The udev database showed no vflag hold (or there is no udev database): nothing to clear.
    NotHeld,
    /// The hold was cleared from the udev database.
    Released { after: Duration },
    /// udev did not clear the hold in time (the stack may still see the PF as not its own;
    /// `bus::release` still hands it over explicitly where the stack allows it).
    StillHeld,
}

/// End of the early stage (success or failure): write the marker, then clear vflag's hold
/// from the udev database, waiting at most `wait`. See the module docs.
pub fn finish(root: &Root, pf: &IfName, wait: Duration) -> std::io::Result<Finish> {
    let ifindex: Option<u32> = sysfs::netdev_ifindex(root, pf.as_str()).ok().flatten();
    let m = marker(root, pf);
    std::fs::create_dir_all(root.hotplug_dir())?;
    // Write-then-rename: udev-import never reads a half-written marker. With the netdev gone,
    // "0" still records "finished this boot", so a later re-add is Readded (no hold that no
    // RemainAfterExit unit would release), not Pending.
    let tmp = root.hotplug_dir().join(format!(".{pf}.new"));
    std::fs::write(&tmp, format!("{}\n", ifindex.unwrap_or(0)))?;
    std::fs::rename(&tmp, &m)?;
    let Some(ifindex) = ifindex else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{pf} has no ifindex (netdev gone?); marker written, udev hold not checked"),
        ));
    };

    // An event udev is still working on may have read "pending" before the marker and write
    // its hold into the database after the check below (seen at boot: the rename's `move`
    // event of a PF the set-up took as soon as its database entry existed). While udev has
    // events queued, a `change` written after the marker settles it: udev runs the device's
    // events in order, and that one reads the marker (no hold) and rewrites the entry last.
    let held = held_in_udev_db(root, ifindex);
    if !held && !root.path(crate::early::UDEV_QUEUE).exists() {
        return Ok(Finish::NotHeld);
    }
    sysfs::netdev_change_uevent(root, pf.as_str())?;
    // Not seen held: the `change` clears a late hold whenever udev gets to it, and the stage
    // does not wait for it. Waiting (up to 2 s behind the representors' events) delayed
    // network-pre.target on every boot (BENCHMARKS.md "Full boot"), to guard a race the
    // wait for the rename (`early::present`) already closes; should a late hold still reach a
    // stack that has started, the late stage hands the port over (`release_stale_hold`).
    if !held {
        return Ok(Finish::NotHeld);
    }
    let started = Instant::now();
    loop {
        if !held_in_udev_db(root, ifindex) {
            return Ok(Finish::Released {
                after: started.elapsed(),
            });
        }
        if started.elapsed() >= wait {
            return Ok(Finish::StillHeld);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Does udev's database entry for this ifindex carry vflag's hold?
pub fn held_in_udev_db(root: &Root, ifindex: u32) -> bool {
    let db = root.path(format!("{UDEV_DB_DIR}/n{ifindex}"));
    std::fs::read_to_string(db)
        .map(|s| s.lines().any(|l| l.trim_end() == "E:VFLAG_HOLD=1"))
        .unwrap_or(false)
}

/// How long [`stage_end`] waits for udev to clear the hold.
pub const UDEV_WAIT: Duration = Duration::from_secs(10);
/// How long a port NetworkManager keeps unmanaged must stay so before the late stage takes it
/// for a stale hold (NetworkManager shows a device it has just found unmanaged for a moment).
const STACK_SETTLE: Duration = Duration::from_secs(3);

/// What [`stage_start`] did.
#[derive(Debug)]
pub struct StageStart {
    pub begin: std::io::Result<()>,
    pub stack: Stack,
    pub hold: Result<Outcome, BusError>,
}

/// Call at the START of the early stage for `pf`: [`begin`], then `bus::hold` on the stack that
/// runs (at boot none does yet: skipped). Never fails the stage: log what it returns.
pub fn stage_start(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    at_boot: bool,
    timeout: Duration,
) -> StageStart {
    let begin = begin(root, pf, at_boot);
    // No PF, nothing to hold: the network stack is not asked about a device that is not there.
    if let Err(why) = require_pf(root, pf) {
        return StageStart {
            begin,
            stack: Stack::None,
            hold: Ok(Outcome::Skipped(why)),
        };
    }
    // A port that is already in a bond is left alone: taking it from the stack would take it out
    // of the bond (NetworkManager does), and the set-up refuses to change a bonded port anyway.
    if let Some(master) = bus::master_of(root, pf) {
        let why = format!("{pf} is already a port of {master}; not disturbing it");
        return StageStart {
            begin,
            stack: Stack::None,
            hold: Ok(Outcome::Skipped(why)),
        };
    }
    let (stack, hold) = with_stack(lag, timeout, |b, stack| bus::hold(b, stack, pf));
    StageStart { begin, stack, hold }
}

/// The PF's net device must be there before the network stack is asked about it.
pub fn require_pf(root: &Root, pf: &IfName) -> Result<(), String> {
    let dir = sysfs::netdev_dir(root, pf.as_str());
    if dir.exists() {
        return Ok(());
    }
    Err(format!(
        "{pf}: no such network interface ({} is missing); is the NIC present, its driver loaded and the name right? Nothing was changed and the network stack was not asked",
        dir.display()
    ))
}

/// What [`stage_end`] did.
#[derive(Debug)]
pub struct StageEnd {
    pub finish: std::io::Result<Finish>,
    pub stack: Stack,
    pub release: Result<Outcome, BusError>,
}

/// Call at the END of the early stage for `pf` — after success AND after failure (from
/// `ExecStopPost=` when `$SERVICE_RESULT` is not `success`): [`finish`] (marker + clear the udev
/// hold), then `bus::release` on the stack that runs. Never fails the stage: log what it
/// returns; a release error means the port may need `nmcli`/`networkctl` by hand.
pub fn stage_end(root: &Root, lag: &Lag, pf: &IfName, timeout: Duration) -> StageEnd {
    let finish = finish(root, pf, UDEV_WAIT);
    if let Err(why) = require_pf(root, pf) {
        return StageEnd {
            finish,
            stack: Stack::None,
            release: Ok(Outcome::Skipped(why)),
        };
    }
    let (stack, release) = with_stack(lag, timeout, |b, stack| bus::release(b, root, stack, pf));
    StageEnd {
        finish,
        stack,
        release,
    }
}

/// For the late stage, once the network stack runs: a PF whose early stage finished but which
/// is still held in udev's database, or is in no bond while the stack leaves it alone
/// ([`bus::leaves_port`]: NetworkManager keeps it unmanaged). [`finish`] waits only [`UDEV_WAIT`] for
/// udev to run its `change`; with udev still busy past that (seen at boot with 2 × 64 VFs'
/// representors under emulation) NetworkManager started while the PF was held and did not take
/// it into its bond even after udev cleared the hold. Clear the hold and hand the port over
/// now ([`stage_end`]: over D-Bus, where the stack allows it). `None`: the port is already in a
/// bond and unheld, or the early stage has not finished with this netdev (a hot-plug still
/// being set up keeps its hold).
pub fn release_stale_hold(
    root: &Root,
    lag: &Lag,
    pf: &IfName,
    timeout: Duration,
) -> Option<StageEnd> {
    let ifindex = sysfs::netdev_ifindex(root, pf.as_str()).ok().flatten()?;
    if !finished(root, pf, Some(ifindex)) {
        return None;
    }
    let held = held_in_udev_db(root, ifindex);
    if !held && (bus::master_of(root, pf).is_some() || !stack_leaves_port(lag, pf, timeout)) {
        return None;
    }
    tracing::warn!(
        pf = %pf,
        step = "release",
        "{pf} is {} after its early stage; handing it to the network stack now",
        if held { "still held in udev's database" } else { "in no bond" }
    );
    Some(stage_end(root, lag, pf, timeout))
}

/// An unheld port in no bond is the stack's own business unless the stack leaves it alone
/// ([`bus::leaves_port`]). Any error asking: hand over, as before.
fn stack_leaves_port(lag: &Lag, pf: &IfName, timeout: Duration) -> bool {
    if lag.network_stack == NetworkStack::None {
        return true;
    }
    let Ok(b) = Bus::system(timeout) else {
        return true;
    };
    let stack = bus::choose(lag.network_stack, Some(&b));
    match bus::leaves_port(&b, stack, pf, STACK_SETTLE) {
        Ok(leaves) => {
            if !leaves {
                tracing::info!(pf = %pf, step = "release", "{pf} is in no bond yet; {stack:?} manages it and enslaves it itself");
            }
            leaves
        }
        Err(e) => {
            tracing::warn!(pf = %pf, step = "release", "cannot ask the network stack about {pf}: {e}");
            true
        }
    }
}

/// Connect to the system bus and pick the stack; a missing bus is "no stack" for `auto` and an
/// error for an explicitly configured stack.
fn with_stack(
    lag: &Lag,
    timeout: Duration,
    f: impl FnOnce(&Bus, Stack) -> Result<Outcome, BusError>,
) -> (Stack, Result<Outcome, BusError>) {
    if lag.network_stack == NetworkStack::None {
        return (
            Stack::None,
            Ok(Outcome::Skipped("network-stack = none".into())),
        );
    }
    let b = match Bus::system(timeout) {
        Ok(b) => b,
        Err(e) if lag.network_stack == NetworkStack::Auto => {
            return (
                Stack::None,
                Ok(Outcome::Skipped(format!("no system bus: {e}"))),
            )
        }
        Err(e) => return (bus::choose(lag.network_stack, None), Err(e)),
    };
    let stack = bus::choose(lag.network_stack, Some(&b));
    (stack, f(&b, stack))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representor_port_names() {
        for r in ["pf0vf0", "pf1vf15", "c1pf0vf5", "pf0sf3", "c12pf1sf0"] {
            assert!(is_representor(r), "{r}");
        }
        for p in ["", "p0", "p1", "pf0", "vf0", "c1p0", "np0"] {
            assert!(!is_representor(p), "{p}");
        }
    }

    /// A missing PF: a clear reason, and no D-Bus call (an explicitly configured stack with no
    /// bus to reach would be an error, not this skip).
    #[test]
    fn missing_pf_is_not_asked_about_on_the_bus() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let mut lag = crate::config::parse_native(&[(
            "/etc/vflag/vflag.conf".into(),
            "[lag bond0]\npfs = ens3f0 ens3f1\n".into(),
        )])
        .plan
        .lags
        .remove(0);
        lag.network_stack = NetworkStack::NetworkManager;
        let pf = IfName::new("ens3f0").unwrap();
        let start = stage_start(&root, &lag, &pf, false, Duration::from_millis(200));
        match &start.hold {
            Ok(Outcome::Skipped(why)) => {
                assert!(why.contains("no such network interface"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let end = stage_end(&root, &lag, &pf, Duration::from_millis(200));
        match &end.release {
            Ok(Outcome::Skipped(why)) => {
                assert!(why.contains("no such network interface"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::create_dir_all(dir.path().join("sys/class/net/ens3f0")).unwrap();
        assert!(require_pf(&root, &pf).is_ok());
    }

    #[test]
    fn sanitizes_values() {
        assert_eq!(sanitize("bond0"), "bond0");
        assert_eq!(sanitize("a b\n\"c"), "a_b__c");
    }
}
