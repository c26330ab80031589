#!/bin/sh
# Create a development CA and a certificate for localhost / 127.0.0.1 / ::1
# signed by it, for wss:// in tests and the quickstart.
#   usage: scripts/devcert.sh [DIR] [ec|rsa]     (default: build/certs, ec)
# Writes DIR/ca.pem (trust this in clients), DIR/server.pem (full chain),
# DIR/server.key.  Existing files are kept unless FORCE=1.
set -eu
dir=${1:-build/certs}
kind=${2:-ec}
mkdir -p "$dir"
if [ -s "$dir/server.pem" ] && [ "${FORCE:-0}" != 1 ]; then
	echo "$dir/server.pem exists (FORCE=1 to replace)"
	exit 0
fi
case $kind in
ec)  keyopt="-newkey ec -pkeyopt ec_paramgen_curve:P-256" ;;
rsa) keyopt="-newkey rsa:2048" ;;
*)   echo "usage: $0 [DIR] [ec|rsa]" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086
openssl req -x509 -nodes $keyopt -days 3650 -subj "/CN=realtimed development CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
# shellcheck disable=SC2086
openssl req -nodes $keyopt -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$tmp/server.csr" 2>/dev/null
cat > "$tmp/ext.cnf" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -CAserial "$tmp/ca.srl" -days 825 -extfile "$tmp/ext.cnf" \
    -out "$dir/server.pem" 2>/dev/null
chmod 600 "$dir/server.key" "$dir/ca.key"
echo "wrote $dir/ca.pem $dir/server.pem $dir/server.key"
