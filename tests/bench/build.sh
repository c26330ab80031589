#!/bin/sh
# Build the benchmark load generators (rtload, pubload): tests/bench/build.sh [OUTDIR]
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
echo "$out/rtload"
echo "$out/pubload"
