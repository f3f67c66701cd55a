#!/usr/bin/env bash
# Installs the Debian packages seer's build needs; does nothing when they are all present.
set -eu
pkgs="build-essential libjansson-dev libpcre2-dev libutf8proc-dev libhdf5-dev zlib1g-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -z "$missing" ]; then echo "setup: all build dependencies present"; exit 0; fi
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "setup: installing$missing"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
