#!/usr/bin/env bash
# Installs the operations tools a check needs from Debian's packages and prints the path of
# each tool asked for, one a line: promtool (package prometheus, for `make rules-test`) and
# buildah (package buildah, for `make image` and `make image-test`). Used by the Makefile and
# .ci/run; exits non-zero, naming the tool, when one is missing and cannot be installed here.
set -euo pipefail
declare -A package=([promtool]=prometheus [buildah]=buildah)
missing=()
for tool in "$@"; do
	[[ -n ${package[$tool]:-} ]] || { echo "ops-deps: unknown tool $tool" >&2; exit 2; }
	command -v "$tool" >/dev/null || missing+=("${package[$tool]}")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		# --no-install-recommends: promtool needs the prometheus package's files, not its
		# server running; buildah needs neither podman nor a daemon.
		apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	else
		echo "ops-deps: ${missing[*]} not installed and cannot be installed here (needs root and apt-get)" >&2
		exit 1
	fi
fi
for tool in "$@"; do
	command -v "$tool" || { echo "ops-deps: $tool still missing after installing its package" >&2; exit 1; }
done
