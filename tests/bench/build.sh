#!/bin/sh
# Build the benchmark load generators (rtload, pubload) and allocprobe.so: tests/bench/build.sh [OUTDIR]
# (default OUTDIR: $RTBENCH_BUILD or /tmp/rtbench-build).  gcc -O2, OpenSSL via pkg-config.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${RTBENCH_BUILD:-/tmp/rtbench-build}}
mkdir -p "$out"
CC=${CC:-gcc}
# shellcheck disable=SC2046
$CC -O2 -g -Wall -Wextra -Wno-unused-parameter ${CFLAGS:-} -o "$out/rtload" "$here/rtload.c" \
    $(pkg-config --cflags --libs openssl zlib)
$CC -O2 -g -Wall -Wextra -D_GNU_SOURCE ${CFLAGS:-} -o "$out/pubload" "$here/pubload.c"
# shellcheck disable=SC2046
$CC -O1 -g -Wall -Wextra -fPIC -shared ${CFLAGS:-} -o "$out/allocprobe.so" "$here/allocprobe.c" \
    $(pkg-config --cflags --libs openssl libevent) -lpthread -ldl
echo "$out/rtload"
echo "$out/pubload"
echo "$out/allocprobe.so"
