# shellcheck shell=bash
# Helpers shared by setup-host.sh and build-image.sh: find the Debian archive URIs the host itself
# uses (deb822 *.sources and one-line sources.list), never a hard-coded host name.
#
#   vm_codename            -> the guest's release: $VFLAG_VM_CODENAME (e.g. trixie, set by
#                             build-image.sh CODENAME), else the host's (/etc/os-release)
#   vm_host_codename       -> the host's release, e.g. bookworm
#   vm_archive_uri SUITE   -> first URI whose Suites list contains SUITE exactly

vm_host_codename() {
    local c
    c=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    echo "${c:-bookworm}"
}
vm_codename() { echo "${VFLAG_VM_CODENAME:-$(vm_host_codename)}"; }

# Print "URI SUITE" pairs for every enabled deb entry in the host's apt sources.
vm_apt_entries() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no") {
                    n = split(uris, U, " "); m = split(suites, S, " ")
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print U[i], S[j]
                }
                types = ""; uris = ""; suites = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                line = $0; key = line; sub(/:.*/, "", key); val = line; sub(/^[^:]*:[ \t]*/, "", val)
                key = tolower(key)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # deb [opts] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
    done
}

vm_archive_uri() {
    local want=$1
    vm_apt_entries | awk -v s="$want" '$2 == s { print $1; exit }'
}

# The URI of the main archive (the one serving "<codename>") and of the security archive. A
# guest release the host's sources do not list (a trixie guest on a bookworm host) comes from the
# archives that serve the host's own release: one Debian archive serves every release.
vm_main_uri() {
    local u
    u=$(vm_archive_uri "$(vm_codename)")
    [ -n "$u" ] || u=$(vm_archive_uri "$(vm_host_codename)")
    echo "$u"
}
vm_security_uri() {
    local u c
    for c in "$(vm_codename)" "$(vm_host_codename)"; do
        u=$(vm_archive_uri "$c-security")
        [ -n "$u" ] || u=$(vm_archive_uri "$c/updates")
        [ -z "$u" ] || break
    done
    echo "$u"
}
