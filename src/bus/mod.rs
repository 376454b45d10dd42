//! D-Bus peers: NetworkManager, systemd-networkd, systemd (network-scripts).
