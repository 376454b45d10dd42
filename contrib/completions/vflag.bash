# bash completion for vflag(8). Installed as <bash-completion dir>/completions/vflag.
# Hand-written (no generated code): PF arguments complete from the configured PFs that
# `vflag plan` prints, falling back to the host's interfaces.

_vflag_pfs()
{
    local pfs
    pfs=$(vflag plan 2>/dev/null | sed -n 's/^ *PFs: *//p')
    [[ -n $pfs ]] || pfs=$(command ls /sys/class/net 2>/dev/null)
    printf '%s\n' $pfs
}

_vflag()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    # As `vflag --help`: the commands the units and udev run are not offered (still completed).
    local commands="plan check status ovs-offload help"
    local global="-v --verbose -h --help -V --version"

    # The command is the first word after the options.
    local i cmd="" nargs=0
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -*) ;;
            *)
                if [[ -z $cmd ]]; then cmd=${words[i]}; else ((nargs++)); fi
                ;;
        esac
    done

    local opts
    case $cmd in
        "")
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$global" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            fi
            return
            ;;
        plan) opts="--json --config" ;;
        check) opts="--json" ;;
        status) opts="--json --prometheus --output" ;;
        ovs-offload) if ((nargs > 0)); then opts="--wait"; else opts=""; fi ;;
        setup | setup-end | hotplug | rebind | udev-import | udev-name | help) opts="" ;;
        *) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts -v --verbose -h --help" -- "$cur"))
        return
    fi
    if [[ ($cmd == plan && ${words[cword - 1]} == --config) || ($cmd == status && ${words[cword - 1]} == --output) ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    case $cmd in
        check | status)
            COMPREPLY=($(compgen -W "$(_vflag_pfs)" -- "$cur"))
            ;;
        setup | setup-end | hotplug | rebind)
            ((nargs == 0)) && COMPREPLY=($(compgen -W "$(_vflag_pfs)" -- "$cur"))
            ;;
        udev-import | udev-name)
            ((nargs == 0)) && COMPREPLY=($(compgen -W "$(command ls /sys/class/net 2>/dev/null)" -- "$cur"))
            ;;
        ovs-offload)
            ((nargs == 0)) && COMPREPLY=($(compgen -W "enable" -- "$cur"))
            ;;
        help)
            ((nargs == 0)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            ;;
    esac
} &&
    complete -F _vflag vflag

# ex: filetype=sh
