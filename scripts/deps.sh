#!/bin/sh
# Install what realtimed needs to build and test on Debian 12 (bookworm).
set -eu
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
pkgs="build-essential autoconf automake pkg-config
 libevent-dev libhiredis-dev libjwt-dev libjson-c-dev libssl-dev zlib1g-dev check
 redis-server redis-tools redis-sentinel python3 python3-websockets python3-jwt python3-pytest python3-cryptography
 clang libclang-rt-14-dev mandoc curl openssl chromium prometheus iproute2 util-linux"
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
