//! `vflag`: the helper the units run (`setup`, `rebind`) and the operator's tool (`plan`).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use vflag::checks::{self, Finding, Outcome};
use vflag::cmdline::Cmdline;
use vflag::config::{self, Lag, Loaded};
use vflag::names::IfName;
use vflag::paths::Root;

#[derive(Parser)]
#[command(
    name = "vflag",
    version,
    about = "VF-LAG set-up for SR-IOV NICs at boot"
)]
struct Cli {
    /// Log debug detail.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what the configuration asks for, and every problem in it.
    Plan {
        /// Machine-readable output (durations in seconds, values spelled as in vflag.conf).
        #[arg(long)]
        json: bool,
        /// Read this file instead of the installed configuration (to try a config first).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Pre-flight checks (IOMMU, firmware, NIC, other owners of the NIC) for the given PFs, or
    /// all configured PFs. Exit status 1 when a check fails. vflag@<pf>.service runs the same
    /// checks as its set-up's first step.
    Check {
        /// PFs to check (default: every configured PF).
        #[arg(value_name = "PF")]
        pfs: Vec<String>,
        /// JSON output, version 1 (see vflag(8), JSON OUTPUT).
        #[arg(long)]
        json: bool,
    },
    /// Is VF-LAG working? Every check of the troubleshooting list in vflag(8), plus Open vSwitch.
    /// Exit status 0: working, 1: degraded, 3: vflag could not find out.
    Status {
        /// PFs to report on (default: every configured PF).
        #[arg(value_name = "PF")]
        pfs: Vec<String>,
        /// JSON output, version 1 (see vflag(8), JSON OUTPUT).
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Prometheus text format (node_exporter textfile collector).
        #[arg(long)]
        prometheus: bool,
        /// Replace FILE atomically instead of printing (e.g. a .prom file in the textfile
        /// collector's directory); exit status 0 whenever FILE was written, degraded or not.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Open vSwitch hardware offload (other_config:hw-offload) through OVSDB.
    OvsOffload {
        #[command(subcommand)]
        action: OvsOffloadAction,
    },
    // Run by the units and udev rules only: hidden from --help, documented in vflag(8).
    /// Early stage for one PF (run by vflag@<pf>.service before network-pre.target): create the
    /// VFs and keep them unbound, switchdev, hw-tc-offload, channels. Safe to run again.
    #[command(hide = true)]
    Setup {
        /// The PF (the unit's instance).
        pf: String,
    },
    /// End of a failed early stage (ExecStopPost= of vflag@<pf>.service): hand the PF to the
    /// network stack if the set-up did not get to do it.
    #[command(hide = true)]
    SetupEnd {
        /// The PF (the unit's instance).
        pf: String,
    },
    /// Hot-plug set-up of one PF (vflag-hotplug@<pf>.service): the early stage, then the late
    /// stage, in one process.
    #[command(hide = true)]
    Hotplug {
        /// The PF (the unit's instance).
        pf: String,
    },
    /// Late stage for one PF (run by vflag-rebind@<pf>.service after network-online.target):
    /// check the bond is valid for VF-LAG, then bind the VFs back to their driver.
    #[command(hide = true)]
    Rebind {
        /// The PF (the unit's instance).
        pf: String,
    },
    /// Print udev properties for a net device (IMPORT{program} in 81-vflag.rules).
    #[command(hide = true)]
    UdevImport {
        /// The network interface udev handles.
        ifname: String,
    },
    /// Print VFLAG_NAME=<name> for a net device that must keep (or get) a vflag name: a PF
    /// re-created by the eswitch change, or a representor (IMPORT{program} in
    /// 79-vflag-names.rules).
    #[command(hide = true)]
    UdevName {
        /// The network interface udev handles.
        ifname: String,
    },
}

#[derive(Subcommand)]
enum OvsOffloadAction {
    /// Set other_config:hw-offload=true (ovs-vswitchd applies it on restart on older releases).
    Enable {
        /// Wait up to TIME (e.g. 60s) while Open vSwitch is absent, not answering or its
        /// database not initialised (vflag-ovs-offload.service uses this).
        #[arg(long, value_name = "TIME", value_parser = config::timespan)]
        wait: Option<std::time::Duration>,
    },
}

fn main() -> ExitCode {
    // Like any Unix filter: `vflag plan --json | head` ends quietly on a closed pipe instead of
    // panicking in println!.
    // SAFETY: restores the default disposition before any other thread exists.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    let cli = Cli::parse();
    vflag::log::init(cli.verbose);
    let root = Root::from_env();
    match run(cli.command, &root) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, root: &Root) -> Result<ExitCode> {
    match command {
        Command::Plan { json, config } => plan(root, json, config.as_deref()),
        Command::Check { pfs, json } => check(root, &pfs, json),
        Command::Status {
            pfs,
            json,
            prometheus,
            output,
        } => Ok(
            status(root, &pfs, json, prometheus, output.as_deref()).unwrap_or_else(|e| {
                tracing::error!("{e:#}");
                ExitCode::from(STATUS_UNKNOWN)
            }),
        ),
        Command::OvsOffload {
            action: OvsOffloadAction::Enable { wait },
        } => ovs_offload_enable(root, wait.unwrap_or_default()),
        Command::UdevName { ifname } => {
            let loaded = config::load(root);
            // udev gives DEVPATH; during an add the netdev may not be in /sys/class/net yet.
            let dir = match std::env::var("DEVPATH") {
                Ok(d) if d.starts_with('/') && !d.contains("..") => root.path(format!("/sys{d}")),
                _ => vflag::device::sysfs::netdev_dir(root, IfName::new(&ifname)?.as_str()),
            };
            if let Some(name) = vflag::naming::udev_name(root, &loaded.plan, &dir) {
                println!("VFLAG_NAME={name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Setup { pf } => setup(root, &pf),
        Command::SetupEnd { pf } => setup_end(root, &pf),
        Command::Hotplug { pf } => match setup(root, &pf)? {
            c if c == ExitCode::SUCCESS => rebind(root, &pf),
            c => Ok(c),
        },
        Command::Rebind { pf } => rebind(root, &pf),
        Command::UdevImport { ifname } => {
            // udev ignores a failing program's output: print what applies, always exit 0.
            let loaded = config::load(root);
            if !loaded.disabled_by_cmdline {
                let props = vflag::hotplug::udev_import(root, &loaded.plan, &ifname);
                print!("{}", vflag::hotplug::format_properties(&props));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn plan(root: &Root, json: bool, file: Option<&std::path::Path>) -> Result<ExitCode> {
    let loaded = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            config::parse_native(&[(f.to_path_buf(), text)])
        }
        None => config::load(root),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&loaded)?);
    } else {
        print_plan(&loaded);
    }
    Ok(if loaded.errors().next().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_plan(loaded: &Loaded) {
    for d in &loaded.diagnostics {
        let level = match d.level {
            config::Level::Warning => "warning",
            config::Level::Error => "error",
        };
        println!("{level}: {d}");
    }
    if loaded.disabled_by_cmdline {
        println!("vflag is disabled for this boot (vflag=0 on the kernel command line).");
        return;
    }
    if loaded.plan.lags.is_empty() {
        if loaded.errors().next().is_some() {
            println!("Nothing will be set up: the configuration has the errors above.");
        } else {
            println!(
                "Nothing to do: no LAG is configured (/etc/vflag/vflag.conf or /etc/sysconfig/sriov)."
            );
        }
        return;
    }
    for lag in &loaded.plan.lags {
        let pfs: Vec<&str> = lag.pfs.iter().map(IfName::as_str).collect();
        println!("[lag {}] from {}", lag.name, lag.source.display());
        println!("  PFs:          {}", pfs.join(" "));
        println!("  VFs per PF:   {}", lag.vfs);
        println!("  eSwitch:      {}", lag.eswitch.as_str());
        let ch = |c: Option<u32>| c.map_or("unchanged".to_string(), |n| n.to_string());
        println!(
            "  channels:     PF {}, representor {}",
            ch(lag.pf_channels),
            ch(lag.representor_channels)
        );
        println!("  network:      {}", lag.network_stack.as_str());
        println!("  rebind before {}", lag.before.join(" "));
        println!(
            "  NIC wait:     {}, LAG wait: {}, set-up at most: {}",
            span(lag.device_timeout),
            span(lag.lag_timeout),
            span(lag.setup_timeout_max)
        );
        if lag.pfs.len() > 2 {
            println!("  pairing:      at boot, each PF is paired with the other listed port of its own NIC (PCI slot, or parent device); a PF without one is refused");
        }
        for pf in &lag.pfs {
            println!(
                "  units:        vflag@{0}.service (before network-pre.target), vflag-rebind@{0}.service",
                pf.unit_instance()
            );
        }
    }
}

/// A timeout as vflag.conf spells it: `45s`, `1500ms`.
fn span(d: std::time::Duration) -> String {
    match d.subsec_millis() {
        0 => format!("{}s", d.as_secs()),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// Bound of each D-Bus exchange with the network stack (NetworkManager can be slow to answer
/// while it starts; at boot, before network-pre.target, no stack runs and calls return at once).
const BUS_TIMEOUT: std::time::Duration = vflag::bus::DEFAULT_TIMEOUT;

/// The configuration, or `None` (after saying so) when `vflag=0` disables vflag for this boot.
fn load_unless_disabled(root: &Root) -> Option<Loaded> {
    let loaded = config::load(root);
    if loaded.disabled_by_cmdline {
        tracing::info!("vflag is disabled by vflag=0 on the kernel command line; nothing done");
        vflag::log::status("disabled by vflag=0 on the kernel command line");
        return None;
    }
    Some(loaded)
}

fn setup(root: &Root, instance: &str) -> Result<ExitCode> {
    // The unit's only process: its deadline counts from here.
    let budget = vflag::budget::Budget::from_env(root, config::DEFAULT_SETUP_TIMEOUT_MAX);
    let Some(loaded) = load_unless_disabled(root) else {
        return Ok(ExitCode::SUCCESS);
    };
    let (lag, pf) = configured_pf(&loaded, instance)?;
    // Wait for the PF (bounded) → checks → hold → set-up → release.
    vflag::early::boot(root, lag, &pf, &budget)?;
    Ok(ExitCode::SUCCESS)
}

fn setup_end(root: &Root, instance: &str) -> Result<ExitCode> {
    // systemd sets SERVICE_RESULT for ExecStopPost=; on a clean stop (shutdown) do nothing.
    if std::env::var("SERVICE_RESULT").is_ok_and(|r| r == "success") {
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = config::load(root);
    let (lag, pf) = configured_pf(&loaded, instance)?;
    if let Err(why) = vflag::hotplug::require_pf(root, &pf) {
        tracing::info!(pf = %pf, step = "release", "nothing to hand over: {why}");
        return Ok(ExitCode::SUCCESS);
    }
    let ifindex = vflag::device::sysfs::netdev_ifindex(root, pf.as_str())
        .ok()
        .flatten();
    if vflag::hotplug::finished(root, &pf, ifindex) {
        return Ok(ExitCode::SUCCESS); // `vflag setup` already handed the PF over
    }
    let end = vflag::hotplug::stage_end(root, lag, &pf, BUS_TIMEOUT);
    tracing::info!(pf = %pf, step = "release", "after a failed set-up: {end:?}");
    Ok(ExitCode::SUCCESS)
}

fn rebind(root: &Root, instance: &str) -> Result<ExitCode> {
    let Some(loaded) = load_unless_disabled(root) else {
        return Ok(ExitCode::SUCCESS);
    };
    let (lag, pf) = configured_pf(&loaded, instance)?;
    // From now on a PF that appears is held until its early stage ran (see hotplug::arm).
    if let Err(e) = vflag::hotplug::arm(root) {
        tracing::warn!(pf = %pf, step = "arm", "cannot create {}: {e}; a PF plugged in later may be bonded before its set-up", root.hotplug_dir().display());
    }
    vflag::log::status("waiting for the bond");
    match vflag::stages::rebind(root, lag, &pf) {
        Ok(report) => {
            tracing::info!(pf = %pf, step = "done", "{}", report.status());
            vflag::log::status(&report.status());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            vflag::log::status(&format!("VF-LAG degraded: {e}"));
            Err(e.into())
        }
    }
}

fn check(root: &Root, pfs: &[String], json: bool) -> Result<ExitCode> {
    // First process of the unit's start (ExecStartPre=): the stage's deadline counts from here.
    let _ = vflag::budget::Budget::from_env(root, config::DEFAULT_SETUP_TIMEOUT_MAX);
    let loaded = config::load(root);
    if loaded.disabled_by_cmdline {
        let why = "vflag is disabled by vflag=0 on the kernel command line; nothing to check";
        match json {
            true => print!(
                "{}",
                vflag::report::json(&[Finding {
                    check: "config",
                    pf: None,
                    outcome: Outcome::Skip,
                    detail: why.into(),
                    hint: None,
                }])
            ),
            false => println!("{why}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cmdline = Cmdline::read(root);
    let targets: Vec<(&Lag, IfName)> = if pfs.is_empty() {
        loaded.plan.pfs().map(|(l, p)| (l, p.clone())).collect()
    } else {
        pfs.iter()
            .map(|p| configured_pf(&loaded, p))
            .collect::<Result<_>>()?
    };
    // By hand (not in a boot unit, whose sandbox cannot open the device for it), also ask
    // Mellanox's mlxconfig where it is installed.
    let mlxconfig = (root.is_real() && std::env::var_os("INVOCATION_ID").is_none())
        .then(|| find_in_path("mlxconfig"))
        .flatten();
    let findings = checks::run(root, &cmdline, &targets, mlxconfig.as_deref());
    if json {
        print!("{}", vflag::report::json(&findings));
    } else {
        print!("{}", vflag::report::table(&findings));
    }
    // Under systemd the journal gets one line per failure; by hand the table says it all.
    let failed = if std::env::var_os("INVOCATION_ID").is_some() {
        checks::report_failures(&findings)
    } else {
        findings.iter().any(|f| f.outcome == Outcome::Fail)
    };
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `vflag status` could not find out (as monitoring plugins' UNKNOWN): not "degraded" (1).
const STATUS_UNKNOWN: u8 = 3;

fn status(
    root: &Root,
    pfs: &[String],
    json: bool,
    prometheus: bool,
    output: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let loaded = config::load(root);
    let pfs: Vec<IfName> = pfs
        .iter()
        .map(|p| IfName::new(p).with_context(|| format!("refusing instance {p:?}")))
        .collect::<Result<_>>()?;
    let findings = vflag::status::collect(root, &loaded, &pfs);
    let text = if json {
        vflag::report::json(&findings)
    } else if prometheus {
        let asked: Vec<IfName> = (loaded.plan.pfs().map(|(_, p)| p.clone()))
            .filter(|p| pfs.is_empty() || pfs.contains(p))
            .collect();
        let setups = vflag::report::setup_times(root, &asked);
        vflag::report::prometheus(&findings, &asked, &setups)
    } else {
        vflag::report::table(&findings)
    };
    if let Some(file) = output {
        // A monitoring file must be replaced in every state, degraded above all: exit 0 once
        // written (its content says degraded), non-zero only when it could not be.
        vflag::report::write_atomic(file, &text)
            .with_context(|| format!("cannot write {}", file.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{text}");
    Ok(if vflag::report::degraded(&findings) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn ovs_offload_enable(root: &Root, wait: std::time::Duration) -> Result<ExitCode> {
    let loaded = config::load(root);
    let changed = vflag::ovs_offload::enable_wait(root, &loaded, wait);
    let changed = match changed {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "cannot set other_config:hw-offload via {}",
                loaded.ovs.db_socket.display()
            );
            vflag::log::status(&format!("{msg}: {e}"));
            return Err(anyhow::Error::new(e).context(msg));
        }
    };
    // On stdout (the journal, under systemd) and as the unit's STATUS= for `systemctl status`.
    println!("{}", vflag::ovs_offload::message(changed));
    vflag::log::status(if changed {
        "hw-offload set; restart ovs-vswitchd (openvswitch_vswitchd container) for it to take effect"
    } else {
        "other_config:hw-offload already true; nothing changed"
    });
    Ok(ExitCode::SUCCESS)
}

fn find_in_path(tool: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The unit instance (`%I`) must name a configured PF; anything else is refused before a path
/// is built from it.
fn configured_pf<'a>(loaded: &'a Loaded, instance: &str) -> Result<(&'a Lag, IfName)> {
    let pf = IfName::new(instance).with_context(|| format!("refusing instance {instance:?}"))?;
    if loaded.disabled_by_cmdline {
        bail!("vflag is disabled by vflag=0 on the kernel command line");
    }
    match loaded.plan.lag_of(&pf) {
        Some(lag) => Ok((lag, pf)),
        None => bail!("{pf} is not a PF of any configured LAG (see `vflag plan`)"),
    }
}
