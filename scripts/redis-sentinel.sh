#!/bin/sh
# A Sentinel topology on loopback for trying realtimed's redis-sentinel://
# mode (and for its tests): one master, one replica, three sentinels, from
# Debian's redis-server and redis-sentinel packages.
#
#   scripts/redis-sentinel.sh start DIR [BASEPORT]   (default 26400)
#   scripts/redis-sentinel.sh stop DIR
#
# Ports: master BASEPORT, replica BASEPORT+1, sentinels BASEPORT+10..12.
# The master set is named "${MASTER_NAME:-mymaster}"; failure detection is
# fast (down-after-milliseconds ${DOWN_AFTER_MS:-1000}) for trying failover.
# REDIS_PASSWORD sets requirepass/masterauth on the data nodes (and the
# sentinels' auth-pass), SENTINEL_PASSWORD requirepass on the sentinels.
# start prints the redis_url to use and returns once the sentinels agree on
# the master and see the replica; everything runs daemonized with its pid
# and log in DIR, and stop ends exactly those pids.
set -eu

usage() { echo "usage: $0 start DIR [BASEPORT] | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2 base=${3:-26400}
name=${MASTER_NAME:-mymaster}
down=${DOWN_AFTER_MS:-1000}
rpass=${REDIS_PASSWORD:-}
spass=${SENTINEL_PASSWORD:-}

cli() { # PORT [PASSWORD] ARGS...
	p=$1 pw=$2; shift 2
	if [ -n "$pw" ]; then
		REDISCLI_AUTH=$pw redis-cli -h 127.0.0.1 -p "$p" "$@" 2>/dev/null
	else
		redis-cli -h 127.0.0.1 -p "$p" "$@" 2>/dev/null
	fi
}

data_node() { # PORT [replicaof-port]
	set -- "$1" "${2:-}"
	auth=
	[ -z "$rpass" ] || auth="--requirepass $rpass --masterauth $rpass"
	repl=
	[ -z "$2" ] || repl="--replicaof 127.0.0.1 $2"
	# shellcheck disable=SC2086
	redis-server --port "$1" --bind 127.0.0.1 --daemonize yes --save "" \
	    --appendonly no --dir "$dir" --dbfilename "dump-$1.rdb" \
	    --pidfile "$dir/redis-$1.pid" --logfile "$dir/redis-$1.log" $auth $repl
}

sentinel() { # PORT
	conf=$dir/sentinel-$1.conf
	{
		echo "port $1"
		echo "bind 127.0.0.1"
		echo "daemonize yes"
		echo "pidfile $dir/sentinel-$1.pid"
		echo "logfile $dir/sentinel-$1.log"
		echo "dir $dir"
		echo "sentinel monitor $name 127.0.0.1 $base 2"
		echo "sentinel down-after-milliseconds $name $down"
		echo "sentinel failover-timeout $name 10000"
		echo "sentinel parallel-syncs $name 1"
		[ -z "$rpass" ] || echo "sentinel auth-pass $name $rpass"
		[ -z "$spass" ] || echo "requirepass $spass"
	} >"$conf"
	redis-sentinel "$conf"
}

wait_until() { # SECONDS DESCRIPTION COMMAND...
	t=$(($1 * 10)) what=$2; shift 2
	while ! "$@"; do
		t=$((t - 1))
		[ $t -gt 0 ] || { echo "$0: timed out: $what" >&2; exit 1; }
		sleep 0.1
	done
}

replica_up() { cli $((base + 1)) "$rpass" INFO replication | grep -q 'master_link_status:up'; }
sentinels_ready() {
	for s in $((base + 10)) $((base + 11)) $((base + 12)); do
		cli "$s" "$spass" SENTINEL get-master-addr-by-name "$name" | grep -qx "$base" || return 1
		n=$(cli "$s" "$spass" SENTINEL master "$name" | sed -n '/^num-other-sentinels$/{n;p;}')
		[ "${n:-0}" -ge 2 ] || return 1
		cli "$s" "$spass" SENTINEL replicas "$name" | grep -qx "$((base + 1))" || return 1
	done
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	data_node "$base"
	data_node $((base + 1)) "$base"
	wait_until 30 "replica in sync" replica_up
	for s in $((base + 10)) $((base + 11)) $((base + 12)); do sentinel "$s"; done
	wait_until 45 "sentinels agree on the master and see the replica" sentinels_ready
	echo "redis_url redis-sentinel://${rpass:+:$rpass@}127.0.0.1:$((base + 10)),127.0.0.1:$((base + 11)),127.0.0.1:$((base + 12))/$name"
	;;
stop)
	for f in "$dir"/sentinel-*.pid "$dir"/redis-*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
		rm -f "$f"
	done
	;;
*) usage ;;
esac
