//! vflag: boot-time VF-LAG set-up for SR-IOV NICs (NVIDIA/Mellanox ConnectX-5 and later).
//!
//! Data flows one way: config → [`config::Plan`] → generated units | kernel actions | reports.
//! Only [`device`] reads or writes /sys and speaks netlink ([`kernlog`] reads the kernel log and
//! mlx5's debugfs LAG files); only [`bus`] and [`ovsdb`] talk to other processes.

pub mod budget;
pub mod bus;
pub mod checks;
pub mod cmdline;
pub mod config;
pub mod device;
pub mod early;
pub mod generator;
pub mod glob;
pub mod hotplug;
pub mod kernlog;
pub mod log;
pub mod names;
pub mod naming;
pub mod ovs_offload;
pub mod ovsdb;
pub mod owners;
pub mod pairing;
pub mod paths;
pub mod report;
pub mod stages;
pub mod status;
