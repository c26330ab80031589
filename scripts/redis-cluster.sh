#!/bin/sh
# A Redis Cluster on loopback for development and tests: 3 masters and 3
# replicas from Debian's redis-server, made into a cluster by redis-cli.
#
#   scripts/redis-cluster.sh start DIR [BASEPORT]   (default 27000)
#   scripts/redis-cluster.sh stop DIR
#
# Nodes listen on BASEPORT..BASEPORT+5 (cluster bus: port + 10000).
# REDIS_PASSWORD sets requirepass/masterauth on every node.  start prints
# the seed list (redis-cluster://…) and returns once every node reports
# cluster_state:ok; everything runs daemonized with its pid and log in DIR,
# and stop ends exactly those pids.
set -eu

usage() { echo "usage: $0 start DIR [BASEPORT] | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2 base=${3:-27000}
rpass=${REDIS_PASSWORD:-}

cli() { # PORT ARGS...
	p=$1; shift
	if [ -n "$rpass" ]; then
		REDISCLI_AUTH=$rpass redis-cli -h 127.0.0.1 -p "$p" "$@" 2>/dev/null
	else
		redis-cli -h 127.0.0.1 -p "$p" "$@" 2>/dev/null
	fi
}

node() { # PORT
	auth=
	[ -z "$rpass" ] || auth="--requirepass $rpass --masterauth $rpass"
	# shellcheck disable=SC2086
	redis-server --port "$1" --bind 127.0.0.1 --daemonize yes --save "" \
	    --appendonly no --dir "$dir" --dbfilename "dump-$1.rdb" \
	    --cluster-enabled yes --cluster-config-file "nodes-$1.conf" \
	    --cluster-node-timeout 2000 --cluster-require-full-coverage no \
	    --repl-diskless-sync-delay 0 \
	    --pidfile "$dir/redis-$1.pid" --logfile "$dir/redis-$1.log" $auth
}

ports() { i=0; while [ $i -lt 6 ]; do echo $((base + i)); i=$((i + 1)); done; }

all_ok() {
	for p in $(ports); do
		cli "$p" CLUSTER INFO | grep -q 'cluster_state:ok' || return 1
	done
}

up() { cli "$1" PING | grep -q PONG; }

wait_until() { # SECONDS DESCRIPTION COMMAND...
	t=$(($1 * 10)) what=$2; shift 2
	while ! "$@"; do
		t=$((t - 1))
		[ $t -gt 0 ] || { echo "$0: timed out: $what" >&2; exit 1; }
		sleep 0.1
	done
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	for p in $(ports); do node "$p"; done
	for p in $(ports); do wait_until 10 "node $p up" up "$p"; done
	hosts=
	for p in $(ports); do hosts="$hosts 127.0.0.1:$p"; done
	auth=
	[ -z "$rpass" ] || auth="-a $rpass --no-auth-warning"
	# shellcheck disable=SC2086
	redis-cli $auth --cluster create $hosts --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
	    { cat "$dir/create.log" >&2; exit 1; }
	wait_until 30 "cluster_state:ok on every node" all_ok
	seeds=
	for p in $(ports); do seeds="$seeds${seeds:+,}127.0.0.1:$p"; done
	echo "redis_url redis-cluster://${rpass:+:$rpass@}$seeds"
	;;
stop)
	for f in "$dir"/redis-*.pid; do
		[ -f "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
	;;
*) usage ;;
esac
