#!/usr/bin/env bash
# What the deployment tests (deploy/test) need from Debian: podman and runc,
# for the container image test. Idempotent; installs only when run as root.
# Elsewhere it says what is missing, and the image test skips, saying why.
set -euo pipefail
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "scripts/deps/deploy.sh: not root, not installing ${missing[*]}: the image test will skip"
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
