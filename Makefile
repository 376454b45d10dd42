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

.PHONY: all build install uninstall test check clean man deb rpm packages

all: build man

build:
	VFLAG_UNIT_DIR=$(UNITDIR) $(CARGO) build --release --locked

install: build man
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
	for m in $(MANPAGES); do p=$$(basename $$m .gz); s=$${p##*.}; \
		install -Dm644 $$m $(DESTDIR)$(MANDIR)/man$$s/$$p.gz; \
	done
	install -Dm644 contrib/completions/vflag.bash $(DESTDIR)$(BASHCOMPDIR)/vflag
	install -Dm644 contrib/completions/_vflag $(DESTDIR)$(ZSHCOMPDIR)/_vflag

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vflag $(DESTDIR)$(GENERATORDIR)/vflag-generator
	rm -f $(DESTDIR)$(UNITDIR)/vflag@.service $(DESTDIR)$(UNITDIR)/vflag-rebind@.service
	for r in udev-rules/*.rules; do rm -f $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$r); done
	for m in $(MANPAGES); do p=$$(basename $$m .gz); rm -f $(DESTDIR)$(MANDIR)/man$${p##*.}/$$p.gz; done
	rm -f $(DESTDIR)$(BASHCOMPDIR)/vflag $(DESTDIR)$(ZSHCOMPDIR)/_vflag
	rm -f $(DESTDIR)$(PREFIX)/share/doc/vflag/vflag.conf.example

# Host tests (unit, golden, systemd-analyze, dbus-daemon, ovsdb-server, man pages), a bounded
# fuzz run, the QEMU guest scenarios, then the .deb/.rpm and the Ansible role.
test:
	tests/setup-host.sh
	$(CARGO) test --locked --all-targets
	tests/fuzz.sh
	tests/vm/run
	tests/packages.sh
	tests/ansible.sh

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

# Packages (metadata in Cargo.toml; needs cargo-deb / cargo-generate-rpm, see tests/packages.sh).
# Both use the /usr/lib paths of Debian 12+ and Rocky/RHEL 8/9, whatever this host's pkg-config says.
PKG_ENV = VFLAG_UNIT_DIR=/usr/lib/systemd/system
deb: man
	$(PKG_ENV) $(CARGO) build --release --locked
	$(PKG_ENV) $(CARGO) deb --no-build

# The binaries link the build host's glibc: build the RPM on the oldest Rocky release it is for.
# gzip payload: any rpm version reads it (zstd, the default, needs an rpm built with zstd).
rpm: man
	$(PKG_ENV) $(CARGO) build --release --locked
	$(CARGO) generate-rpm --payload-compress gzip

packages: deb rpm

clean:
	$(CARGO) clean
