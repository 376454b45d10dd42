# vflag %postun (erase $1=0, upgrade $1=1): drop what the removed files provided.
# Never fails the transaction (see %post). /etc/vflag is the administrator's: left alone.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ -S /run/udev/control ]; then
	udevadm control --reload >/dev/null 2>&1 || :
fi
exit 0
