#!/usr/bin/env bash
# Builds the benchmark module and runs every scenario against every
# library, side by side: the servers pinned to CPU 0, the load generator
# to CPU 1, the libraries interleaved over the repetitions.  It writes
# results/results.jsonl (every run), results/results.md (medians, with
# ratios) and results/chart.svg, which ../BENCHMARKS.md shows.
#
#   bench/run.sh              the full set, about 32 minutes
#   bench/run.sh -short       a quick check of every echo, compressed too,
#                             under a minute; results go to $BENCH_OUT or a
#                             temporary directory
#   bench/run.sh -only idle   flags after these go to benchrun
#   bench/run.sh -only compression -out results/compression
#                             permessage-deflate only, about 8 minutes
set -euo pipefail
cd "$(dirname "$0")"

out=results
if [ "${1:-}" = "-short" ]; then
	out="${BENCH_OUT:-$(mktemp -d)}"
fi

# 10,000 idle connections need as many descriptors in each process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p bin
go build -o bin/ ./cmd/...
./bin/benchrun -bin bin -out "$out" "$@"
echo "results in $out: results.md, chart.svg, results.jsonl"
