# vflag: build, install (DESTDIR/PREFIX aware) and test.
#   make && sudo make install       build and install into the host's systemd/udev directories
#   make test                       the whole test suite (installs what it needs; Debian, as root)

PREFIX     ?= /usr
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
CARGO      ?= cargo

# Ask the host's systemd/udev where units, generators and rules go; fall back to the usual
# paths. On merged-/usr hosts pkg-config may answer /lib/...: install under /usr/lib instead.
pkgvar = $(shell v=$$(pkg-config --variable=$(2) $(1) 2>/dev/null); \
	case "$$v" in /lib/*) [ -L /lib ] && v=/usr$$v;; esac; echo $${v:-$(3)})
UNITDIR      ?= $(call pkgvar,systemd,systemdsystemunitdir,/usr/lib/systemd/system)
GENERATORDIR ?= $(call pkgvar,systemd,systemdsystemgeneratordir,/usr/lib/systemd/system-generators)
UDEVDIR      ?= $(call pkgvar,udev,udevdir,/usr/lib/udev)

RELEASE = target/release

.PHONY: all build install uninstall test check clean

all: build

build:
	VFLAG_UNIT_DIR=$(UNITDIR) $(CARGO) build --release --locked

install: build
	install -Dm755 $(RELEASE)/vflag $(DESTDIR)$(BINDIR)/vflag
	install -Dm755 $(RELEASE)/vflag-generator $(DESTDIR)$(GENERATORDIR)/vflag-generator
	install -d $(DESTDIR)$(UNITDIR)
	for u in units/*.service; do \
		sed 's|/usr/bin/vflag|$(BINDIR)/vflag|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done
	install -d $(DESTDIR)$(UDEVDIR)/rules.d
	for r in udev-rules/*.rules; do [ -e "$$r" ] || continue; \
		sed 's|/usr/bin/vflag|$(BINDIR)/vflag|g' $$r > $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$r); \
		chmod 644 $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$r); \
	done
	install -d $(DESTDIR)$(SYSCONFDIR)/vflag/vflag.conf.d
	install -Dm644 contrib/vflag.conf.example $(DESTDIR)$(PREFIX)/share/doc/vflag/vflag.conf.example
	for m in man/*.[0-9]; do [ -e "$$m" ] || continue; \
		s=$${m##*.}; install -Dm644 $$m $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$m); \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vflag $(DESTDIR)$(GENERATORDIR)/vflag-generator
	rm -f $(DESTDIR)$(UNITDIR)/vflag@.service $(DESTDIR)$(UNITDIR)/vflag-rebind@.service
	for r in udev-rules/*.rules; do rm -f $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$r); done

# Host tests (unit, golden, systemd-analyze, dbus-daemon, ovsdb-server), then the QEMU guest.
test:
	tests/setup-host.sh
	$(CARGO) test --locked --all-targets
	tests/vm/run

# Host tests only (no VM).
check:
	tests/setup-host.sh
	$(CARGO) test --locked --all-targets

clean:
	$(CARGO) clean
