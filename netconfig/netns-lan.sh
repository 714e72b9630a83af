#!/bin/sh
# netns-lan.sh — a virtual LAN of N Linux network namespaces, for PruneMesh demos and tests.
#
#   netns-lan.sh up N [--loss P]   build (or resize/reconfigure) the LAN: namespaces pm-ns0 … pm-ns(N-1)
#   netns-lan.sh down              remove every namespace this script made
#   netns-lan.sh exec I CMD…       run CMD inside namespace pm-nsI
#   netns-lan.sh status            list the namespaces, addresses and loss rules
#
# Layout: a hub namespace (pm-hub) holds a bridge (pm-br0, multicast snooping off so multicast
# floods to every port). Each node namespace pm-nsI has a veth "eth0" whose peer pm-hI sits on
# the bridge, address 10.99.0.(I+1)/24, the MULTICAST flag, and a 224.0.0.0/4 route via eth0 so
# multicast beacons (e.g. 239.255.77.77:7947) reach every other namespace. --loss P drops P% of
# the packets each namespace receives on eth0 (nftables: input hook, `numgen random mod 100 < P`).
#
# Every link is created inside the namespaces: the host's own interfaces, routes and firewall
# are never touched. Running `up` again is safe: it creates what is missing, removes namespaces
# beyond N and re-applies the loss setting (--loss 0 or no --loss removes it).
# Needs root, iproute2 and (for --loss) nftables. Environment: PM_NETNS_PREFIX (default "pm")
# and PM_NETNS_SUBNET (default "10.99.0") to run two LANs side by side.
set -eu

PREFIX="${PM_NETNS_PREFIX:-pm}"
SUBNET="${PM_NETNS_SUBNET:-10.99.0}"
HUB="$PREFIX-hub"
BRIDGE="$PREFIX-br0"
MAX=250

die() { echo "netns-lan.sh: $*" >&2; exit 1; }
ns() { echo "$PREFIX-ns$1"; }
exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }
is_uint() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces need CAP_SYS_ADMIN)"
    command -v ip >/dev/null 2>&1 || die "iproute2 (ip) is not installed"
}

set_loss() { # namespace percent
    if [ "$2" -gt 0 ]; then
        command -v nft >/dev/null 2>&1 || die "--loss needs nftables (apt-get install nftables)"
        ip netns exec "$1" nft -f - <<NFT
table inet pmloss
delete table inet pmloss
table inet pmloss {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "eth0" numgen random mod 100 < $2 drop
    }
}
NFT
    elif command -v nft >/dev/null 2>&1; then
        ip netns exec "$1" nft delete table inet pmloss 2>/dev/null || true
    fi
}

up() {
    count="${1:-}"
    shift || true
    loss=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --loss) [ $# -ge 2 ] || die "--loss needs a percentage"; loss="$2"; shift 2 ;;
            --loss=*) loss="${1#--loss=}"; shift ;;
            *) die "unknown option $1" ;;
        esac
    done
    is_uint "$count" && [ "$count" -ge 1 ] && [ "$count" -le "$MAX" ] || die "N must be a whole number in 1…$MAX (got '$count')"
    is_uint "$loss" && [ "$loss" -le 100 ] || die "--loss must be a whole percentage in 0…100 (got '$loss')"
    need_root

    if ! exists "$HUB"; then
        ip netns add "$HUB"
    fi
    ip -n "$HUB" link set lo up
    if ! ip -n "$HUB" link show "$BRIDGE" >/dev/null 2>&1; then
        ip -n "$HUB" link add "$BRIDGE" type bridge
    fi
    ip -n "$HUB" link set "$BRIDGE" type bridge mcast_snooping 0 stp_state 0 forward_delay 0
    ip -n "$HUB" link set "$BRIDGE" up

    i=0
    while [ "$i" -lt "$count" ]; do
        n="$(ns "$i")"
        exists "$n" || ip netns add "$n"
        ip -n "$n" link set lo up
        if ! ip -n "$n" link show eth0 >/dev/null 2>&1; then
            ip -n "$HUB" link del "$PREFIX-h$i" 2>/dev/null || true
            # Both ends are created inside the namespaces, never in the host's.
            ip -n "$HUB" link add "$PREFIX-h$i" type veth peer name eth0 netns "$n"
        fi
        ip -n "$HUB" link set "$PREFIX-h$i" master "$BRIDGE"
        ip -n "$HUB" link set "$PREFIX-h$i" up
        ip -n "$n" link set eth0 multicast on
        ip -n "$n" link set eth0 up
        ip -n "$n" addr replace "$SUBNET.$((i + 1))/24" dev eth0
        ip -n "$n" route replace 224.0.0.0/4 dev eth0
        set_loss "$n" "$loss"
        i=$((i + 1))
    done

    # Shrinking: remove node namespaces numbered N and above.
    for n in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-ns[0-9]+\$" || true); do
        idx="${n#"$PREFIX"-ns}"
        if [ "$idx" -ge "$count" ]; then
            ip netns del "$n"
            ip -n "$HUB" link del "$PREFIX-h$idx" 2>/dev/null || true
        fi
    done
    echo "up: $count namespaces $(ns 0)…$(ns $((count - 1))) on $SUBNET.0/24 (bridge $BRIDGE in $HUB), loss $loss%"
}

down() {
    need_root
    for n in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-(ns[0-9]+|hub)\$" || true); do
        ip netns del "$n"
    done
    echo "down: removed the $PREFIX-* namespaces"
}

run_in() {
    [ $# -ge 2 ] || die "usage: netns-lan.sh exec I CMD…"
    is_uint "$1" || die "I must be a namespace index (got '$1')"
    n="$(ns "$1")"
    shift
    exists "$n" || die "namespace $n does not exist (run: netns-lan.sh up N)"
    exec ip netns exec "$n" "$@"
}

status() {
    for n in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-ns[0-9]+\$" | sort -V || true); do
        addr="$(ip -n "$n" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')"
        loss="$(ip netns exec "$n" nft list table inet pmloss 2>/dev/null | grep -o 'mod 100 < [0-9]*' | awk '{print $4}' || true)"
        echo "$n eth0 ${addr:-none} loss ${loss:-0}%"
    done
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    up) up "$@" ;;
    down) down ;;
    exec) run_in "$@" ;;
    status) status ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
