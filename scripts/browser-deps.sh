#!/usr/bin/env bash
# Installs what the headless browser test needs: Debian's chromium (apt) and playwright-core
# (npm, into e2e/browser/node_modules; it never downloads a browser of its own) and a colour
# emoji font for the demo's screenshots. Prints the
# Chromium path on success. Used by internal/ws/browser_test.go and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$chromium" ]]; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >&2 && apt-get install -y -qq chromium >&2
		chromium=$(command -v chromium)
	else
		echo "browser-deps: chromium is not installed and cannot be installed here (needs root and apt-get)" >&2
		exit 1
	fi
fi
# The demo's reactions are emoji: without a colour emoji font its screenshots show empty boxes.
# Nice to have, not needed by any assertion, so a machine that cannot install it goes on.
if ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >&2 || echo "browser-deps: no emoji font; screenshots show boxes" >&2
fi
command -v npm >/dev/null || { echo "browser-deps: npm is not installed" >&2; exit 1; }
if [[ ! -f e2e/browser/node_modules/playwright-core/package.json ]]; then
	(cd e2e/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error >&2)
fi
echo "$chromium"
