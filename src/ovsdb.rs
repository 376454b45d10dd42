//! OVSDB (RFC 7047) client over a unix socket, and ovs-vswitchd unixctl.
