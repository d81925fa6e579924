#!/usr/bin/env bash
# Builds the m4sh container image without a daemon: a static binary (CGO_ENABLED=0) built by
# the host's Go toolchain (its build cache makes rebuilds quick), CA certificates, a non-root
# user (65532) and a writable data directory, assembled FROM scratch with buildah (vfs
# storage under .data/containers, so nothing outside the repository is touched). Labels carry
# the OpenAPI document's info.version and the git commit. Prints the image reference.
# IMAGE (default localhost/m4sh) names it; it is tagged with the version and the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
buildah=$(scripts/ops-deps.sh buildah)
store=(--root "$PWD/.data/containers/storage" --runroot "$PWD/.data/containers/run" --storage-driver vfs)
bah() { "$buildah" "${store[@]}" "$@"; }
image=${IMAGE:-localhost/m4sh}
version=$(sed -n '/^info:/,/^[^ ]/s/^  version: *//p' openapi/openapi.yaml | head -1)
[[ -n $version ]] || { echo "image: no info.version in openapi/openapi.yaml" >&2; exit 1; }
commit=$(git rev-parse HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] || commit+=-dirty
uid=65532

# The root filesystem, laid out on the host and copied in whole, ownership included.
root=.data/image/rootfs
rm -rf "$root" && mkdir -p "$root"/{etc/ssl/certs,tmp,var/lib/m4sh}
# The commit is linked in: Go's VCS stamp is missing in git worktrees and with -buildvcs=false.
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.linkedCommit=$commit" -o "$root/m4sh" ./cmd/m4sh
if [[ ! -f /etc/ssl/certs/ca-certificates.crt ]]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >&2
fi
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/sbin/nologin\nm4sh:x:%d:%d:m4sh:/var/lib/m4sh:/sbin/nologin\n' $uid $uid >"$root/etc/passwd"
printf 'root:x:0:\nm4sh:x:%d:\n' $uid >"$root/etc/group"
chmod 1777 "$root/tmp"
chown -R $uid:$uid "$root/var/lib/m4sh"

ctr=$(bah from --pull=never scratch)
trap 'bah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(bah mount "$ctr")
cp -a "$root/." "$mnt/"
bah umount "$ctr" >/dev/null
bah config \
	--user $uid:$uid --workingdir /var/lib/m4sh --port 8080 \
	--env HTTP_ADDR=:8080 --env STORAGE_DIR=/var/lib/m4sh/blobs --env LOG_FORMAT=json \
	--entrypoint '["/m4sh"]' --cmd serve --stop-signal SIGTERM \
	--healthcheck 'CMD ["/m4sh", "healthcheck"]' --healthcheck-interval 10s --healthcheck-timeout 3s \
	--label org.opencontainers.image.title=m4sh \
	--label "org.opencontainers.image.version=$version" \
	--label "org.opencontainers.image.revision=$commit" \
	"$ctr" 2>/dev/null
# Docker format keeps the HEALTHCHECK (the OCI image format has no field for it).
bah commit --quiet --format docker --rm "$ctr" "$image:$version" >/dev/null
trap - EXIT
bah tag "$image:$version" "$image:$commit"
bah rmi --prune >/dev/null 2>&1 || true # the previous build's image, now untagged
echo "$image:$version"
