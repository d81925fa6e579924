#!/usr/bin/env bash
# pgcluster.sh — provisions and starts a private PostgreSQL cluster from the system's
# PostgreSQL binaries, then prints a connection URL on stdout (everything else goes to stderr).
#
#   scripts/pgcluster.sh start DIR [DBNAME] [--fast|--durable]   ensure running, print URL
#   scripts/pgcluster.sh stop DIR                                stop it (data kept)
#
# The cluster listens on 127.0.0.1 on a free port chosen at creation (kept in its
# postgresql.conf), trusts loopback connections, and never touches the system's own cluster.
# Running it twice reuses the cluster. Its durability is chosen once, at creation:
#   --fast     fsync, synchronous_commit and full_page_writes off: throwaway test clusters,
#              where a crash may lose everything and speed is all that matters.
#   --durable  production durability for benchmarks: fsync, synchronous_commit and
#              full_page_writes on, every other setting PostgreSQL's default except
#              shared_buffers = 1GB (the default 128MB is far below what any production
#              server runs with; 1GB is what a small dedicated server would have).
#   (neither)  PostgreSQL's defaults throughout (the development cluster).
# Asking an existing cluster for a different mode than it was created with is an error, so a
# benchmark can never silently run on a fast cluster.
set -euo pipefail

usage="usage: pgcluster.sh start|stop DIR [DBNAME] [--fast|--durable]"
cmd=${1:?$usage}
dir=${2:?$usage}
db=${3:-m4sh}
mode=${4:-}
case "$db" in --fast | --durable) mode=$db; db=m4sh ;; esac
case "$mode" in "" | --fast | --durable) ;; *) printf 'pgcluster: %s\n' "$usage" >&2; exit 2 ;; esac

log() { printf 'pgcluster: %s\n' "$*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir)
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  fi
  return 1
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
  log "no PostgreSQL server binaries found; installing the postgresql package"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  bindir=$(find_bindir) || { log "PostgreSQL binaries still missing after install"; exit 1; }
fi

# initdb and pg_ctl refuse to run as root: run them as the postgres user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir=$(realpath -m "$dir")
mkdir -p "$(dirname "$dir")"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$(dirname "$dir")" 2>/dev/null; then
  # The postgres user cannot reach this path (e.g. a checkout under /root): keep the cluster
  # in a per-checkout directory it can reach and leave a pointer behind.
  alt="/var/tmp/m4sh-pg-$(printf '%s' "$dir" | md5sum | cut -c1-10)"
  printf '%s\n' "$alt" > "$dir.location"
  dir=$alt
fi
data="$dir/data"

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 20000 ))
    port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}
conf_port() { sed -n "s/^port = \([0-9]*\).*/\1/p" "$data/postgresql.auto.conf" 2>/dev/null | tail -n1; }

case "$cmd" in
stop)
  [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" -m fast stop >&2 || true
  exit 0 ;;
start) ;;
*) log "unknown command $cmd"; exit 2 ;;
esac

if [ ! -f "$data/PG_VERSION" ]; then
  log "creating cluster in $data ($bindir)"
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
  as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = ''"
    echo "max_connections = 300"
    echo "port = $(pick_port)"
    case "$mode" in
    --fast)
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off" ;;
    --durable)
      echo "fsync = on"
      echo "synchronous_commit = on"
      echo "full_page_writes = on"
      echo "shared_buffers = '1GB'" ;;
    esac
  } | as_pg tee -a "$data/postgresql.auto.conf" >/dev/null
  echo "${mode#--}" | as_pg tee "$dir/mode" >/dev/null
fi

# Clusters made before modes were recorded: fsync = off in the configuration means fast.
created=$(cat "$dir/mode" 2>/dev/null || { grep -q '^fsync = off' "$data/postgresql.auto.conf" && echo fast; } || echo "")
if [ -n "$mode" ] && [ "${mode#--}" != "$created" ] && ! { [ "$mode" = --durable ] && [ -z "$created" ]; }; then
  log "$dir was created ${created:-with the default settings}, not $mode: remove it (or use another directory)"
  exit 1
fi

port=$(conf_port)
if ! as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  if ! port_free "$port"; then
    # Someone else took our port while we were stopped: move.
    port=$(pick_port)
    echo "port = $port" | as_pg tee -a "$data/postgresql.auto.conf" >/dev/null
  fi
  as_pg "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >&2 9>&- \
    || { tail -n 30 "$data/server.log" >&2; exit 1; }
fi

psql=("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -tA)
if [ "$("${psql[@]}" -d postgres -c "select 1 from pg_database where datname = '$db'")" != 1 ]; then
  "${psql[@]}" -d postgres -c "create database \"$db\"" >&2
fi
echo "postgres://postgres@127.0.0.1:$port/$db?sslmode=disable"
