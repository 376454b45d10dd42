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
	case "$$v" in (/lib/*) [ -L /lib ] && v=/usr$$v;; esac; echo $${v:-$(3)})
UNITDIR      ?= $(call pkgvar,systemd,systemdsystemunitdir,/usr/lib/systemd/system)
GENERATORDIR ?= $(call pkgvar,systemd,systemdsystemgeneratordir,/usr/lib/systemd/system-generators)
UDEVDIR      ?= $(call pkgvar,udev,udevdir,/usr/lib/udev)
# systemd.pc names no directory for .network files: networkd reads $(PREFIX)/lib/systemd/network.
NETWORKDIR   ?= $(PREFIX)/lib/systemd/network

RELEASE = target/release

# Shell completions (contrib/completions/). zsh has no pkg-config file: Debian's zsh reads
# vendor-completions, Fedora/RHEL/Rocky's site-functions.
BASHCOMPDIR ?= $(call pkgvar,bash-completion,completionsdir,$(PREFIX)/share/bash-completion/completions)
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/$(if $(wildcard /etc/debian_version),vendor-completions,site-functions)

# Man pages: man/*.in are the pages, written directly in roff (man macros). The build step is
# only "substitute @VERSION@, gzip -n" with sed and gzip, which every Debian and Rocky build
# host has: no pandoc/asciidoctor/ronn toolchain to install, and the output is reproducible.
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MANPAGES := $(patsubst man/%.in,target/man/%.gz,$(wildcard man/*.in))

.PHONY: all build install uninstall test check clean man deb rpm packages package-bin

all: build man

build:
	VFLAG_UNIT_DIR=$(UNITDIR) $(CARGO) build --release --locked

# The binaries `make install` installs: the release build (default), or ones built already, e.g.
# INSTALL_BINS=target/package-bin (tests/packages.sh: no second LTO build of the same source).
INSTALL_BINS ?= $(RELEASE)

install: $(if $(filter $(RELEASE),$(INSTALL_BINS)),build) man
	install -Dm755 $(INSTALL_BINS)/vflag $(DESTDIR)$(BINDIR)/vflag
	install -Dm755 $(INSTALL_BINS)/vflag-generator $(DESTDIR)$(GENERATORDIR)/vflag-generator
	install -d $(DESTDIR)$(UNITDIR)
	for u in units/*.service units/*.path units/*.timer; do \
		sed 's|/usr/bin/vflag|$(BINDIR)/vflag|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done
	install -Dm644 units/00-vflag-hold.network $(DESTDIR)$(NETWORKDIR)/00-vflag-hold.network
	install -d $(DESTDIR)$(UDEVDIR)/rules.d
	for r in udev-rules/*.rules; do [ -e "$$r" ] || continue; \
		sed 's|/usr/bin/vflag|$(BINDIR)/vflag|g' $$r > $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$r); \
		chmod 644 $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$r); \
	done
	install -d $(DESTDIR)$(SYSCONFDIR)/vflag/vflag.conf.d
	install -Dm644 contrib/vflag.conf.example $(DESTDIR)$(PREFIX)/share/doc/vflag/vflag.conf.example
	for m in $(MANPAGES); do p=$$(basename $$m .gz); s=$${p##*.}; \
		install -Dm644 $$m $(DESTDIR)$(MANDIR)/man$$s/$$p.gz; \
	done
	install -Dm644 contrib/completions/vflag.bash $(DESTDIR)$(BASHCOMPDIR)/vflag
	install -Dm644 contrib/completions/_vflag $(DESTDIR)$(ZSHCOMPDIR)/_vflag

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vflag $(DESTDIR)$(GENERATORDIR)/vflag-generator
	for u in units/*.service units/*.path units/*.timer; do rm -f $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	rm -f $(DESTDIR)$(NETWORKDIR)/00-vflag-hold.network
	for r in udev-rules/*.rules; do rm -f $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$r); done
	for m in $(MANPAGES); do p=$$(basename $$m .gz); rm -f $(DESTDIR)$(MANDIR)/man$${p##*.}/$$p.gz; done
	rm -f $(DESTDIR)$(BASHCOMPDIR)/vflag $(DESTDIR)$(ZSHCOMPDIR)/_vflag
	rm -f $(DESTDIR)$(PREFIX)/share/doc/vflag/vflag.conf.example

# Host tests (unit, golden, systemd-analyze, dbus-daemon, ovsdb-server, man pages), a bounded
# fuzz run, the .deb/.rpm built and inspected, the QEMU guest scenarios (vflag installed there
# from that .deb by the Ansible role), then the role's offline branches: the steps and their
# wall times are in tests/run-all.sh (a table at the end of every run).
test:
	CARGO=$(CARGO) tests/run-all.sh

# Host tests only (no VM).
check:
	tests/setup-host.sh
	$(CARGO) test --locked --all-targets

# Man pages, built into target/man/ (see MANPAGES above).
man: $(MANPAGES)

target/man/%.gz: man/%.in Cargo.toml
	@mkdir -p target/man
	sed 's/@VERSION@/$(VERSION)/g' $< > target/man/$*
	gzip -9nf target/man/$*

# Packages, built with Debian's own tools: dpkg-deb (dpkg) and rpmbuild (Debian's rpm package;
# tests/package-tools.sh installs it). Both are staged by `make install` above (one list of what
# goes where) with the /usr/lib paths of Debian 12+ and Rocky/RHEL 8/9, whatever this host's
# pkg-config says; zsh completions go to Debian's vendor-completions, Rocky's site-functions.
# Metadata and maintainer scripts: contrib/debian/ (control.in, copyright, postinst, prerm,
# postrm), contrib/rpm/ (vflag.spec.in, post.sh, preun.sh, postun.sh).
# The packaged binaries (target/package-bin/) must run on the oldest glibc a package is for:
# Rocky/RHEL 8 has 2.28 (Debian 11: 2.31, Ubuntu 20.04: 2.31). With cargo-zigbuild (zig
# supplies the glibc $(GLIBC_FLOOR) symbol versions) they link against that floor, on any build
# host; without it they are a plain release build and need this host's glibc (a warning says so).
PKG_ENV     = VFLAG_UNIT_DIR=/usr/lib/systemd/system
GLIBC_FLOOR ?= 2.28
PKG_TARGET  = x86_64-unknown-linux-gnu
# PKG_TARGET's architecture as Debian and rpm name it.
DEB_ARCH    = amd64
RPM_ARCH    = x86_64
TARGET_DIR  = $(shell $(CARGO) metadata --no-deps --format-version 1 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
PKG_PATHS   = PREFIX=/usr BINDIR=/usr/bin MANDIR=/usr/share/man SYSCONFDIR=/etc \
	UNITDIR=/usr/lib/systemd/system GENERATORDIR=/usr/lib/systemd/system-generators \
	UDEVDIR=/usr/lib/udev NETWORKDIR=/usr/lib/systemd/network \
	BASHCOMPDIR=/usr/share/bash-completion/completions
# Reproducible packages: every timestamp is the last commit's (the sources' mtime outside git).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || stat -c %Y Cargo.toml)
PKG_STAGE   = target/package-stage

# zig and cargo-zigbuild from PyPI in a venv (tests/package-tools.sh installs them there), or
# on PATH.
ZIG_VENV    ?= /var/tmp/vflag-zig-venv
ZIG_PATH     = PATH=$(ZIG_VENV)/bin:$$PATH

package-bin:
	@mkdir -p target/package-bin
	if $(ZIG_PATH) sh -c 'command -v cargo-zigbuild' >/dev/null && \
	   { $(ZIG_PATH) python3 -m ziglang version || zig version; } >/dev/null 2>&1; then \
		$(ZIG_PATH) $(PKG_ENV) $(CARGO) zigbuild --release --locked --target $(PKG_TARGET).$(GLIBC_FLOOR) && \
		cp $(TARGET_DIR)/$(PKG_TARGET)/release/vflag $(TARGET_DIR)/$(PKG_TARGET)/release/vflag-generator target/package-bin/; \
	else \
		echo "WARNING: no cargo-zigbuild: the packaged binaries need this host's glibc ($$(ldd --version | head -n1))" >&2; \
		$(PKG_ENV) $(CARGO) build --release --locked && \
		cp $(TARGET_DIR)/release/vflag $(TARGET_DIR)/release/vflag-generator target/package-bin/; \
	fi

# $(call stage,<dir>,<zsh completion dir>): the package's files in <dir>, by `make install` of
# target/package-bin with the package paths, plus README.md. make install's empty
# /etc/vflag/vflag.conf.d is not packaged: an installed package ships no file under /etc (any
# vflag.conf or drop-in would switch off the /etc/sysconfig/sriov path; /etc/vflag is the
# operator's, never touched by upgrades or removal).
define stage
	rm -rf $(1)
	umask 022 && $(MAKE) --no-print-directory install DESTDIR=$(abspath $(1)) \
		INSTALL_BINS=target/package-bin $(PKG_PATHS) ZSHCOMPDIR=$(2) >/dev/null
	rmdir $(1)/etc/vflag/vflag.conf.d $(1)/etc/vflag $(1)/etc
	install -m644 README.md $(1)/usr/share/doc/vflag/README.md
endef

# target/debian/vflag_<version>-1_amd64.deb: control.in with the version and Installed-Size
# (KiB: each file rounded up, 1 per directory, as dpkg-gencontrol counts), xz like cargo-deb
# before; dpkg-deb sorts the entries, names them ./..., owner root.
deb: man package-bin
	$(call stage,$(PKG_STAGE)/deb,/usr/share/zsh/vendor-completions)
	install -m644 contrib/debian/copyright $(PKG_STAGE)/deb/usr/share/doc/vflag/copyright
	install -d -m755 $(PKG_STAGE)/deb/DEBIAN
	install -m755 contrib/debian/postinst contrib/debian/prerm contrib/debian/postrm $(PKG_STAGE)/deb/DEBIAN/
	size=$$(cd $(PKG_STAGE)/deb && find . -mindepth 1 -path ./DEBIAN -prune -o -printf '%y %s\n' | \
		awk '{ n += $$1 == "f" ? int(($$2 + 1023) / 1024) : 1 } END { print n }') && \
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' -e "s/@INSTALLED_SIZE@/$$size/" \
		contrib/debian/control.in > $(PKG_STAGE)/deb/DEBIAN/control
	find $(PKG_STAGE)/deb -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	mkdir -p $(TARGET_DIR)/debian
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) dpkg-deb --root-owner-group -Zxz --build \
		$(PKG_STAGE)/deb $(TARGET_DIR)/debian/vflag_$(VERSION)-1_$(DEB_ARCH).deb

# target/generate-rpm/vflag-<version>-1.x86_64.rpm (the path cargo-generate-rpm used): the spec
# from vflag.spec.in, the file list from the stage (man pages and /usr/share/doc are %doc).
RPM_TOP = $(abspath target/rpmbuild)
rpm: man package-bin
	$(call stage,$(PKG_STAGE)/rpm,/usr/share/zsh/site-functions)
	find $(PKG_STAGE)/rpm -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	rm -rf $(RPM_TOP) && mkdir -p $(RPM_TOP) $(TARGET_DIR)/generate-rpm
	cd $(PKG_STAGE)/rpm && find . -type f | sed 's|^\.||' | LC_ALL=C sort | \
		sed -E 's@^/usr/share/(doc|man)/@%doc &@' > $(RPM_TOP)/files
	sed -e 's/@VERSION@/$(VERSION)/g' -e 's|@STAGE@|$(abspath $(PKG_STAGE)/rpm)|g' \
		-e 's|@FILES@|$(RPM_TOP)/files|g' -e 's|@SCRIPTS@|$(CURDIR)/contrib/rpm|g' \
		contrib/rpm/vflag.spec.in > $(RPM_TOP)/vflag.spec
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) rpmbuild -bb --quiet --nodeps --target $(RPM_ARCH) \
		--define '_topdir $(RPM_TOP)' --define '_rpmdir $(TARGET_DIR)/generate-rpm' \
		--define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' \
		$(RPM_TOP)/vflag.spec

packages: deb rpm

clean:
	$(CARGO) clean
