#!/usr/bin/env bash
# benchcpu.sh — where a benchmark's CPU goes when the database shares the machine: runs one
# Go benchmark for a fixed number of iterations against a private cluster made by
# pgcluster.sh, and prints the CPU seconds used by the test process (load generator and
# server) and by the cluster's PostgreSQL processes (backends that exited included), with
# the benchmark's own line. Run it once with N=1 to measure setup, and subtract.
#
#   scripts/benchcpu.sh CLUSTER_DIR PACKAGE BENCH N
#   e.g. scripts/benchcpu.sh .data/pgtest ./internal/httpapi 'TelemetryIngestBatch20Gzip/m4sh' 60000
#
# Ticks from /proc are 1/100 s: use N large enough for seconds of work. Linux only.
set -euo pipefail

dir=${1:?usage: benchcpu.sh CLUSTER_DIR PACKAGE BENCH N}
pkg=${2:?usage: benchcpu.sh CLUSTER_DIR PACKAGE BENCH N}
bench=${3:?usage: benchcpu.sh CLUSTER_DIR PACKAGE BENCH N}
n=${4:?usage: benchcpu.sh CLUSTER_DIR PACKAGE BENCH N}

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath -m "$dir")
[ -f "$dir.location" ] && dir=$(cat "$dir.location") # see pgcluster.sh
url=$("$root/scripts/pgcluster.sh" start "$dir" m4sh --fast | tail -1)
pidfile="$dir/data/postmaster.pid"

# pg_ticks prints the user+system ticks of the postmaster, its live children and its reaped
# children (cutime/cstime), which is every backend the benchmark used.
pg_ticks() {
  local pm p s t=0
  pm=$(head -1 "$pidfile")
  for p in "$pm" $(ps -o pid= --ppid "$pm"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    read -r -a f <<<"$s"
    t=$((t + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$t"
}

bin=$(mktemp)
trap 'rm -f "$bin" "$bin.out"' EXIT
(cd "$root" && go test -c -o "$bin" "$pkg")
before=$(pg_ticks)
start=$(date +%s.%N)
times=$( { cd "$root/$pkg" && TEST_DATABASE_URL="$url" /usr/bin/time -f '%U %S' "$bin" -test.run '^$' \
  -test.bench "$bench" -test.benchtime "${n}x" -test.benchmem >"$bin.out"; } 2>&1 | tail -1)
end=$(date +%s.%N)
after=$(pg_ticks)
grep -E '^Benchmark' "$bin.out"
read -r user sys <<<"$times"
awk -v u="$user" -v s="$sys" -v pg="$((after - before))" -v w="$(echo "$end - $start" | bc)" -v n="$n" 'BEGIN {
  printf "cpu seconds: test process %.2f, postgres %.2f, wall %.2f (N=%d)\n", u + s, pg / 100, w, n }'
