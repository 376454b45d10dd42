//! The kernel floor of vflag's two stages: only the writes and netlink calls the kernel must be
//! asked to do, with no guards, no state file, no reads beyond finding what to act on.
//! A benchmark baseline (tests/bench/), not a tool: it checks nothing and stops at the first error.
//!
//!   floor early VFS PF_CHANNELS REP_CHANNELS PF...   autoprobe 0, sriov_numvfs, eswitch switchdev,
//!                                                     wait for the representors, hw-tc-offload on
//!                                                     and channels on each PF and representor
//!   floor late DRIVER PF...                           autoprobe 1, bind every VF to DRIVER
//!
//! Built with `cargo build --release --example floor`. Prints the time it spent inside (µs) on
//! stderr; the harness times the whole process from outside, like the other variants.
use std::path::Path;
use std::time::{Duration, Instant};
use vflag::device::devlink::{Devlink, EswitchMode};
use vflag::device::ethtool::{channels_set_payload, features_set_payload};
use vflag::device::genl::Family;
use vflag::device::repr;
use vflag::device::sysfs::{self, Pf};
use vflag::names::IfName;
use vflag::paths::Root;

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> R<()> {
    let t0 = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Root::from_env();
    match args.first().map(String::as_str) {
        Some("early") if args.len() >= 5 => {
            let vfs: u32 = args[1].parse()?;
            let pf_ch: u32 = args[2].parse()?;
            let rep_ch: u32 = args[3].parse()?;
            let mut dl = Devlink::open()?;
            let mut et = Family::open("ethtool")?;
            for name in &args[4..] {
                early(&root, &mut dl, &mut et, name, vfs, pf_ch, rep_ch)?;
            }
        }
        Some("late") if args.len() >= 3 => {
            for name in &args[2..] {
                late(&root, &args[1], name)?;
            }
        }
        _ => {
            eprintln!(
                "usage: floor early VFS PF_CHANNELS REP_CHANNELS PF... | floor late DRIVER PF..."
            );
            std::process::exit(2);
        }
    }
    eprintln!("floor: {} us inside", t0.elapsed().as_micros());
    Ok(())
}

fn early(
    root: &Root,
    dl: &mut Devlink,
    et: &mut Family,
    name: &str,
    vfs: u32,
    pf_ch: u32,
    rep_ch: u32,
) -> R<()> {
    // Phase times on stderr, next to vflag's step log when the harness profiles (early.sh profile).
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("floor {name}: {what} at {} us", t0.elapsed().as_micros());
    let pf = Pf::open(root, &IfName::new(name)?)?;
    // PCI only: netdevsim has no sriov_drivers_autoprobe.
    let autoprobe = pf.dev_dir.join("sriov_drivers_autoprobe");
    if autoprobe.exists() {
        sysfs::write_attr(&autoprobe, "0")?;
    }
    pf.set_numvfs(vfs)?;
    phase("VFs created");
    let h = pf.handle();
    dl.set_eswitch_mode(&h, EswitchMode::Switchdev)?;
    phase("switchdev set");
    // Representors: the devlink port dump until every VF has one (netdevsim and mlx5 create
    // them during the eswitch change; the loop is for drivers that do not).
    let start = Instant::now();
    let reps = loop {
        let (reps, _) = repr::find(&pf, Some(&mut *dl))?;
        if (0..vfs).all(|i| reps.iter().any(|r| r.vf == i)) {
            break reps;
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("{name}: representors did not appear").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    phase("representors found");
    // The PF's ifindex after the mode change (mlx5 re-creates the uplink netdev).
    let pf_index = sysfs::netdev_ifindex(root, name)?.ok_or("PF has no ifindex")?;
    let ports = std::iter::once((pf_index, pf_ch)).chain(reps.iter().map(|r| (r.ifindex, rep_ch)));
    for (idx, ch) in ports {
        et.conn.request(
            et.id,
            0,
            &features_set_payload(idx, "hw-tc-offload", true),
            "features set",
        )?;
        et.conn
            .request(et.id, 0, &channels_set_payload(idx, ch), "channels set")?;
    }
    phase("offload and channels set");
    Ok(())
}

fn late(root: &Root, driver: &str, name: &str) -> R<()> {
    let pf = Pf::open(root, &IfName::new(name)?)?;
    let bind = root
        .path("/sys/bus")
        .join(&pf.bus)
        .join("drivers")
        .join(driver)
        .join("bind");
    let autoprobe = pf.dev_dir.join("sriov_drivers_autoprobe");
    if Path::new(&autoprobe).exists() {
        sysfs::write_attr(&autoprobe, "1")?;
    }
    for vf in pf.vfs()? {
        sysfs::write_attr(&bind, &vf.addr)?;
    }
    Ok(())
}
