//! Device model: the only code that writes to /sys or speaks netlink.
