#!/usr/bin/env bash
# Builds the image (scripts/image.sh), mounts its root filesystem (buildah mount) and runs the
# binary inside it with chroot as the image's user, against the test database: --version
# (labels and output agree), migrate up/status on a fresh database, serve with the
# healthcheck subcommand probing /healthz and /readyz. Also checks the image's user, that the
# binary is static and that CA certificates are in place. Prints how long the build took.
set -euo pipefail
cd "$(dirname "$0")/.."
buildah=$(scripts/ops-deps.sh buildah)
store=(--root "$PWD/.data/containers/storage" --runroot "$PWD/.data/containers/run" --storage-driver vfs)
bah() { "$buildah" "${store[@]}" "$@"; }
fail() { echo "image-test: FAIL: $*" >&2; exit 1; }
chroot=$(command -v chroot) # env -i leaves no PATH to find it by
export PGOPTIONS='-c client_min_messages=warning'

start=$(date +%s%N)
ref=$(scripts/image.sh)
echo "image-test: built $ref in $((($(date +%s%N) - start) / 1000000)) ms" >&2
version=${ref##*:}
commit=$(bah inspect --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}' "$ref")

# Image configuration.
[[ $(bah inspect --format '{{.OCIv1.Config.User}}' "$ref") == 65532:65532 ]] || fail "image user is not 65532:65532"
[[ $(bah inspect --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}' "$ref") == "$version" ]] || fail "version label"
[[ $commit == "$(git rev-parse HEAD)"* ]] || fail "revision label $commit is not HEAD"
bah inspect --format '{{.Docker.Config.Healthcheck.Test}}' "$ref" | grep -q healthcheck || fail "no HEALTHCHECK"

url=${TEST_DATABASE_URL:-$(scripts/pgcluster.sh start .data/pgtest m4sh --fast)}
psql=$(command -v psql || ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)
db=m4sh_image_test
dburl=${url%%\?*}; dburl="${dburl%/*}/$db"; [[ $url == *\?* ]] && dburl+="?${url#*\?}"
"$psql" "$url" -X -q -c "drop database if exists $db with (force)" -c "create database $db"

ctr=$(bah from --pull=never "$ref")
pid=
cleanup() {
	[[ -z $pid ]] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
	bah umount "$ctr" >/dev/null 2>&1 || true
	bah rm "$ctr" >/dev/null 2>&1 || true
	"$psql" "$url" -X -q -c "drop database if exists $db with (force)" || true
}
trap cleanup EXIT
mnt=$(bah mount "$ctr")
# img [VAR=value...] -- ARGS: /m4sh ARGS inside the image's root filesystem, as its user,
# with only the given environment.
img() {
	local env=(HOME=/var/lib/m4sh)
	while [[ $1 != -- ]]; do env+=("$1"); shift; done
	shift
	env -i "${env[@]}" "$chroot" --userspec=65532:65532 "$mnt" /m4sh "$@"
}

go version -m "$mnt/m4sh" | grep -q 'CGO_ENABLED=0' || fail "binary is not built with CGO_ENABLED=0"
[[ -s $mnt/etc/ssl/certs/ca-certificates.crt ]] || fail "no CA certificates"

got=$(img -- --version)
[[ $got == "m4sh $version (commit $commit)" ]] || fail "--version printed '$got', want 'm4sh $version (commit $commit)'"
echo "image-test: $got" >&2

img DATABASE_URL="$dburl" LOG_LEVEL=warn -- migrate up >&2
status=$(img DATABASE_URL="$dburl" -- migrate status)
grep -qx 'pending: \[\]' <<<"$status" || fail "migrate status in the image: $status"
grep -qx 'river schema current: true' <<<"$status" || fail "migrate status in the image: $status"
echo "image-test: migrate status from the image: $(tr '\n' ' ' <<<"$status")" >&2

port=$((20000 + RANDOM % 20000))
# Not through img: env and chroot exec, so $! is the server's own pid.
env -i HOME=/var/lib/m4sh DATABASE_URL="$dburl" HTTP_ADDR="127.0.0.1:$port" LOG_LEVEL=warn \
	AUTH_JWT_SECRET=image-test-secret-0123456789abcdefghijklmnop \
	"$chroot" --userspec=65532:65532 "$mnt" /m4sh serve >&2 &
pid=$!
for _ in $(seq 100); do
	img HTTP_ADDR="127.0.0.1:$port" -- healthcheck 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || fail "serve exited"
	sleep 0.2
done
img HTTP_ADDR="127.0.0.1:$port" -- healthcheck || fail "/healthz did not answer 200"
img -- healthcheck -url "http://127.0.0.1:$port/readyz" || fail "/readyz did not answer 200"
kill -TERM "$pid"
wait "$pid" || fail "serve did not exit cleanly on SIGTERM"
pid=
echo "image-test: ok ($ref)" >&2
