//! Configuration: /etc/vflag/vflag.conf (+ drop-ins) or the seed's /etc/sysconfig/sriov → Plan.
