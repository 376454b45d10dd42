//! Kernel command line: `vflag=0|off|no|false` disables vflag for one boot.
