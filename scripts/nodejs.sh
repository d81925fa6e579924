#!/usr/bin/env bash
# Prints the path of a Node.js binary of major version $1 (one of scripts/nodejs/*/): the
# machine's node when it is that version, otherwise the version pinned in
# scripts/nodejs/$1/package.json, installed with npm on first use (the registry's `node`
# package ships the binary). Used by internal/e2e to test the TypeScript client under
# Node 20 and 22.
set -euo pipefail
cd "$(dirname "$0")/.."
major=${1:?usage: scripts/nodejs.sh MAJOR}
dir=scripts/nodejs/$major
[[ -f $dir/package.json ]] || { echo "nodejs: no pinned Node.js $major (no $dir/package.json)" >&2; exit 1; }
if command -v node >/dev/null && [[ $(node --version) == "v$major."* ]]; then
	command -v node
	exit 0
fi
exec 9<"$dir/package.json"
flock 9 # parallel tests install once
if ! "$dir/node_modules/.bin/node" --version >/dev/null 2>&1; then
	command -v npm >/dev/null || { echo "nodejs: npm is not installed" >&2; exit 1; }
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
[[ $("$dir/node_modules/.bin/node" --version) == "v$major."* ]] || { echo "nodejs: $dir installed $("$dir/node_modules/.bin/node" --version), not $major" >&2; exit 1; }
echo "$PWD/$dir/node_modules/.bin/node"
