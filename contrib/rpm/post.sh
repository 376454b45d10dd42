# vflag %post (install $1=1, upgrade $1=2): let systemd see the unit templates and generator,
# udev the rules. Nothing is enabled or started: the generator only creates units for PFs
# configured in /etc/vflag/vflag.conf (or /etc/sysconfig/sriov), for the next boot.
# Never fails the transaction: in a chroot or image build neither systemd nor udevd runs.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ -S /run/udev/control ]; then
	udevadm control --reload >/dev/null 2>&1 || :
fi
exit 0
