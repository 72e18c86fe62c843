#!/usr/bin/env bash
# Runs the hub's fan-out benchmark: 1 KiB messages to 10,000 subscribers
# spread over two hub instances, through the in-memory broker (one
# process, the baseline), Redis and NATS, with one and with four messages
# in flight, three times each.  It writes results/hub/results.jsonl and
# results/hub/results.md.  Redis and NATS are $REDIS_ADDR and $NATS_URL,
# or servers of its own on free loopback ports.
#
#   bench/hub.sh                 the full set, about 5 minutes
#   bench/hub.sh -subs 1000      flags go to every hubfanout run
set -euo pipefail
cd "$(dirname "$0")"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p bin results/hub
go build -o bin/ ./cmd/hubfanout

tmp=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}
if [ -z "${REDIS_ADDR:-}" ]; then
	port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$tmp" >/dev/null &
	pids+=($!)
	REDIS_ADDR="127.0.0.1:$port"
fi
if [ -z "${NATS_URL:-}" ]; then
	port=$(free_port)
	nats-server -a 127.0.0.1 -p "$port" -js -sd "$tmp/nats" >/dev/null 2>&1 &
	pids+=($!)
	NATS_URL="nats://127.0.0.1:$port"
fi
sleep 1

out=results/hub/results.jsonl
: >"$out"
for rep in 1 2 3; do
	for window in 1 4; do
		for broker in memory redis nats; do
			echo "run $rep: $broker, $window in flight" >&2
			./bin/hubfanout -broker "$broker" -redis "$REDIS_ADDR" -nats "$NATS_URL" -window "$window" "$@" >>"$out"
		done
	done
done
./bin/hubfanout -report "$out" | tee results/hub/results.md
