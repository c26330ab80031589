#!/bin/bash
# Build realtimed and run it in the foreground on ws://localhost:8888/ws with
# a development configuration; starts a local redis-server if none answers.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cd "$top"
autoreconf -fi >/dev/null 2>&1
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure -q; } && make -j"$(nproc)" -s src/realtimed src/realtimectl)

if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
	echo "starting a local redis-server on 127.0.0.1:6379"
	redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
fi

conf=$top/build/dev.conf
secret_file=$top/build/dev.secret
[ -s "$secret_file" ] || openssl rand -hex 32 > "$secret_file"
secret=$(cat "$secret_file")
cat > "$conf" <<CONF
# development configuration written by scripts/quickstart.sh
listen 127.0.0.1:8888
workers 2
echo_path /echo
jwt_secret $secret
redis_url redis://127.0.0.1:6379
log_level info
pidfile $top/build/realtimed.pid
admin_socket $top/build/realtimed.sock
drain_period 0
CONF

# A development token (HS256, 24 h): header.payload.signature, base64url.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
payload=$(printf '{"userId":"dev-user","email":"dev@example.com","role":"admin","iat":%d,"exp":%d}' "$now" $((now + 86400)) | b64url)
sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
token="$header.$payload.$sig"

cat <<MSG

realtimed is starting on ws://localhost:8888/ws (Ctrl-C stops it).

Development JWT (userId dev-user, role admin, valid 24 h):
  $token

Try it from another terminal:
  /usr/bin/python3 -m websockets "ws://localhost:8888/ws?token=$token"
then type {"type":"subscribe","channel":"apps:created"} and, in a third one:
  redis-cli PUBLISH apps:created '{"id":"app-1","name":"my-app"}'
Operate it with:
  build/src/realtimectl -s build/realtimed.sock stats

MSG
exec "$top/build/src/realtimed" -f -c "$conf"
