# vflag %preun (erase $1=0, upgrade $1=1): on erase, stop and disable vflag-prometheus.timer if
# the administrator enabled it (the package never does), so no dangling symlink is left.
# Never fails the transaction: in a chroot systemd is not running (disable still removes links).
if [ "$1" -eq 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl disable --now vflag-prometheus.timer >/dev/null 2>&1 || :
	else
		systemctl --no-reload disable vflag-prometheus.timer >/dev/null 2>&1 || :
	fi
fi
exit 0
