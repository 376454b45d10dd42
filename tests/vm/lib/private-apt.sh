# shellcheck shell=bash
# A private apt (APT_CONFIG) rooted in $1 that sees the host's archive URIs for <codename>,
# <codename>-updates and <codename>-security: used to download the kernel and its source without
# touching the host's apt state.  Usage: vm_private_apt_init DIR; then "${VM_APT[@]}" / "${VM_APT_CACHE[@]}".
vm_private_apt_init() {
    local dir=$1 c main sec
    c=$(vm_codename); main=$(vm_main_uri); sec=$(vm_security_uri)
    [ -n "$main" ] && [ -n "$sec" ] || { echo "private-apt: host apt sources lack $c or $c-security" >&2; return 1; }
    mkdir -p "$dir"/{lists/partial,archives/partial,etc/sources.list.d,etc/preferences.d}
    cat > "$dir/etc/sources.list.d/vflag.sources" <<SRC
Types: deb
URIs: $main
Suites: $c $c-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $sec
Suites: $c-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > "$dir/apt.conf" <<CONF
Dir::State "$dir";
Dir::State::Lists "$dir/lists";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$dir";
Dir::Cache::Archives "$dir/archives";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$dir/etc/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$dir/etc/preferences.d";
Acquire::Retries "3";
Acquire::http::Timeout "30";
APT::Get::List-Cleanup "true";
CONF
    VM_APT=(env APT_CONFIG="$dir/apt.conf" apt-get -q -y)
    VM_APT_CACHE=(env APT_CONFIG="$dir/apt.conf" apt-cache)
}
