#!/bin/sh
# Installs what the status page's browser test (internal/e2e/browser) needs:
# Chromium, driven headless by chromedp. Idempotent; installs only as root
# (CI runs as root); otherwise the test skips and says why.
set -eu
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "scripts/deps/status.sh: chromium is missing and this is not root: the status page's browser test will skip" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
