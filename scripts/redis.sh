#!/usr/bin/env bash
# Starts and stops the Redis servers that stepup's tests use: one plain
# redis-server and a three-master Redis Cluster, on free loopback ports,
# each a daemon with a pidfile under one directory.
#
#   scripts/redis.sh start [DIR]   start them (if not already running in DIR),
#                                  print the environment lines for the tests
#   scripts/redis.sh env [DIR]     print those lines for servers running in DIR
#   scripts/redis.sh stop [DIR]    stop the servers of DIR, by PID, and wait
#   scripts/redis.sh status [DIR]  say whether they run
#   scripts/redis.sh install       install redis-server and redis-tools if missing
#
# DIR defaults to $STEPUP_REDIS_DIR, else /tmp/stepup-redis. By hand:
#
#   eval "$(scripts/redis.sh start)"   # exports STEPUP_TEST_REDIS_ADDR, STEPUP_TEST_REDIS_CLUSTER
#   go test -race ./redisstore/
#   scripts/redis.sh stop
#
# The ports are picked at random among free ones (never 6379), so a Redis
# that is already running on this machine is neither used nor disturbed.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}
dir=${2:-${STEPUP_REDIS_DIR:-/tmp/stepup-redis}}
nodes=(single c1 c2 c3)

# port_free PORT: true if nothing listens on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port: prints a port P such that P and P+10000 (the cluster bus) are free.
pick_port() {
	local i p
	for i in $(seq 1 200); do
		p=$((15000 + RANDOM % 10000))
		if port_free "$p" && port_free $((p + 10000)); then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# ours NAME: prints the PID of our server NAME if it is running, else fails.
ours() {
	local pidfile="$dir/$1/redis.pid" pid
	[ -s "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	[ -r "/proc/$pid/cmdline" ] || return 1
	# The PID must still be a redis-server (PIDs are reused).
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'redis-server' || return 1
	echo "$pid"
}

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

# start_node NAME PORT [ARGS...]: starts one daemon and waits until it answers
# as our own (its working directory is ours), or fails.
start_node() {
	local name=$1 port=$2 nd="$dir/$1"
	shift 2
	mkdir -p "$nd"
	rm -f "$nd/redis.pid" "$nd/nodes.conf"
	: >"$nd/redis.log"
	redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
		--pidfile "$nd/redis.pid" --logfile "$nd/redis.log" --dir "$nd" \
		--save '' --appendonly no "$@" || return 1
	local i
	for i in $(seq 1 100); do
		if [ "$(cli "$port" config get dir 2>/dev/null | sed -n 2p)" = "$nd" ] && ours "$name" >/dev/null; then
			echo "$port" >"$nd/port"
			return 0
		fi
		# After a second, a daemon that is not running has failed (its
		# port was taken meanwhile): give up on this port at once.
		[ "$i" -ge 10 ] && ! ours "$name" >/dev/null && break
		sleep 0.1
	done
	log "redis-server $name did not start on port $port; its log:"
	cat "$nd/redis.log" >&2 || true
	stop_node "$name"
	return 1
}

# start_node_free NAME [ARGS...]: start_node on a free port, retrying when the
# port was taken in the meantime.
start_node_free() {
	local name=$1 try
	shift
	for try in 1 2 3 4 5; do
		start_node "$name" "$(pick_port)" "$@" && return 0
	done
	die "could not start redis-server $name"
}

# stop_nodes NAME...: SIGTERM to each of our servers, then wait for all of
# them (SIGKILL after 10 s).
stop_nodes() {
	local name pid pids=() i
	for name in "$@"; do
		if pid=$(ours "$name"); then
			kill "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	for i in $(seq 1 100); do
		local alive=()
		for pid in ${pids[@]+"${pids[@]}"}; do
			kill -0 "$pid" 2>/dev/null && alive+=("$pid")
		done
		pids=(${alive[@]+"${alive[@]}"})
		[ ${#pids[@]} -eq 0 ] && break
		sleep 0.1
	done
	for pid in ${pids[@]+"${pids[@]}"}; do
		log "redis-server PID $pid ignored SIGTERM; killing it"
		kill -9 "$pid" 2>/dev/null || true
	done
	for name in "$@"; do rm -f "$dir/$name/redis.pid"; done
}

stop_node() { stop_nodes "$1"; }

port_of() { cat "$dir/$1/port"; }

running() {
	local n
	for n in "${nodes[@]}"; do
		ours "$n" >/dev/null || return 1
	done
	[ -s "$dir/env" ]
}

print_env() {
	running || die "no Redis servers running in $dir (run: $0 start)"
	cat "$dir/env"
}

wait_cluster_ok() {
	local i n ok
	for i in $(seq 1 300); do
		ok=1
		for n in c1 c2 c3; do
			cli "$(port_of "$n")" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok' || ok=0
		done
		[ $ok = 1 ] && return 0
		sleep 0.1
	done
	die "Redis Cluster did not reach cluster_state:ok within 30s"
}

start() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		die "redis-server and redis-cli are not installed (run: $0 install)"
	if running; then
		log "already running in $dir"
		cat "$dir/env"
		return 0
	fi
	stop # leftovers of a partial start
	mkdir -p "$dir"
	start_node_free single
	local n
	for n in c1 c2 c3; do
		start_node_free "$n" --cluster-enabled yes --cluster-config-file nodes.conf \
			--cluster-node-timeout 5000
	done
	local seeds=()
	for n in c1 c2 c3; do seeds+=("127.0.0.1:$(port_of "$n")"); done
	redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log" 2>&1 || {
		cat "$dir/cluster-create.log" >&2
		stop
		die "redis-cli --cluster create failed"
	}
	wait_cluster_ok
	local joined
	joined=$(IFS=,; echo "${seeds[*]}")
	cat >"$dir/env" <<EOF
export STEPUP_TEST_REDIS_ADDR=127.0.0.1:$(port_of single)
export STEPUP_TEST_REDIS_CLUSTER=$joined
EOF
	log "started redis-server on $(port_of single) and a Redis Cluster on ${seeds[*]} (dir $dir)"
	cat "$dir/env"
}

stop() {
	local n present=()
	for n in "${nodes[@]}"; do
		[ -d "$dir/$n" ] && present+=("$n")
	done
	[ ${#present[@]} -gt 0 ] && stop_nodes "${present[@]}"
	rm -f "$dir/env"
}

case $cmd in
start) start ;;
stop) stop ;;
env) print_env ;;
status)
	if running; then
		log "running in $dir"
		cat "$dir/env"
	else
		log "not running in $dir"
		exit 1
	fi
	;;
install) ensure_commands redis-server=redis-server redis-cli=redis-tools ;;
*)
	sed -n '2,20p' "$0" >&2
	exit 2
	;;
esac
