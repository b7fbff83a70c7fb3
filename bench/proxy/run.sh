#!/bin/sh
# Proxy benchmark (loopback only). Compares, against the same nginx TLS
# upstream: direct TLS, nono's intercepting+injecting proxy (CONNECT + MITM
# TLS + header injection), nginx (2 workers) as a TLS-terminating reverse
# proxy adding the same header, and mitmdump with a header-setting addon.
# Also: new-connection (handshake-bound) rates and 1 GiB tunnel throughput
# (direct vs through a blind tunnel, same source and sink, same run).
# nono runs with its default loop threads (one per CPU) and, for the
# ratio the threads buy, with one.
#
# Usage: bench/proxy/run.sh PATH/TO/proxy-testd [SECONDS] [CONNS]
# Needs: nginx, openssl, curl, python3, cc; mitmdump optional.
set -eu
testd=$(realpath "$1")
secs=${2:-10}
conns=${3:-8}
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/nono-proxy-bench.XXXXXX)
chmod 755 "$T" # nginx workers read big.bin
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	[ -f "$T/up/nginx.pid" ] && kill "$(cat "$T/up/nginx.pid")" 2>/dev/null || true
	[ -f "$T/rp/nginx.pid" ] && kill "$(cat "$T/rp/nginx.pid")" 2>/dev/null || true
	sleep 0.5
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

cc -O2 -o "$T/loadgen" "$here/loadgen.c" -lssl -lcrypto -lpthread
cd "$T"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -days 2 -subj /CN=bench-ca -out ca.pem \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out api.key
openssl req -new -key api.key -subj /CN=api.test -out api.csr
printf 'subjectAltName=DNS:api.test,DNS:tunnel.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > api.ext
openssl x509 -req -in api.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile api.ext -out api.pem 2>/dev/null
truncate -s 1G big.bin

UP=$(freeport); RP=$(freeport); RAW=$(freeport); MITM=$(freeport)
mkdir -p up rp
cat > up/nginx.conf <<CONF
worker_processes 1;
pid $T/up/nginx.pid;
error_log $T/up/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$UP ssl;
    ssl_certificate $T/api.pem; ssl_certificate_key $T/api.key;
    location = / { return 200 "ok\n"; }
    location = /big { alias $T/big.bin; }
  }
}
CONF
cat > rp/nginx.conf <<CONF
worker_processes 2;
pid $T/rp/nginx.pid;
error_log $T/rp/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$RP ssl;
    ssl_certificate $T/api.pem; ssl_certificate_key $T/api.key;
    location / {
      proxy_pass https://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host api.test;
      proxy_set_header Authorization "Bearer secret-value";
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $T/ca.pem;
      proxy_ssl_name api.test;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
CONF
nginx -c "$T/up/nginx.conf"
nginx -c "$T/rp/nginx.conf"

# raw byte source for the tunnel: 1 GiB per connection, then close
"$T/loadgen" -S "$RAW" &
pids="$pids $!"

TOKEN=bench-token-0123456789
cat > cfg.json <<CONF
{"upstream_ca": "$T/ca.pem", "ca_out": "$T/proxy-ca.pem",
 "overrides": [["api.test:443", "127.0.0.1:$UP"], ["tunnel.test:443", "127.0.0.1:$UP"],
               ["raw.test:9", "127.0.0.1:$RAW"]],
 "listeners": [{"token": "$TOKEN", "allow_private": true,
   "allow": [["api.test", 443], ["tunnel.test", 443], ["raw.test", 9]],
   "inject": [["api.test", "Authorization", "Bearer \${secret:bench}"]]}]}
CONF
# the same proxy with one loop thread, for the ratio the threads buy
sed 's/^{/{"loops": 1, /; s/proxy-ca.pem/proxy-ca1.pem/' cfg.json > cfg1.json
"$testd" cfg1.json > testd1.out 2> testd1.err &
TESTD1_PID=$!
pids="$pids $TESTD1_PID"
"$testd" cfg.json > testd.out 2> testd.err &
pids="$pids $!"
for i in $(seq 50); do [ -s testd.out ] && [ -s testd1.out ] && break; sleep 0.1; done
PP=$(cat testd.out)
PP1=$(cat testd1.out)
cat ca.pem proxy-ca.pem > bundle.pem
cat ca.pem proxy-ca1.pem > bundle1.pem

have_mitm=0
if command -v mitmdump >/dev/null; then
	cat > addon.py <<'PY'
def request(flow):
    flow.request.headers["Authorization"] = "Bearer secret-value"
PY
	mitmdump -q --listen-host 127.0.0.1 -p "$MITM" --set confdir="$T/mitm" \
		--set proxyauth="nono:$TOKEN" --set ssl_verify_upstream_trusted_ca="$T/ca.pem" \
		-s addon.py > mitm.log 2>&1 &
	pids="$pids $!"
	for i in $(seq 100); do [ -f "$T/mitm/mitmproxy-ca-cert.pem" ] && break; sleep 0.1; done
	sleep 1
	cat ca.pem "$T/mitm/mitmproxy-ca-cert.pem" > mitm-bundle.pem
	have_mitm=1
fi
sleep 0.5
LG="$T/loadgen -d $secs -c $conns -s api.test"
TESTD_PID=$(echo $pids | awk '{print $NF}')
[ $have_mitm = 1 ] && { MITM_PID=$TESTD_PID; TESTD_PID=$(echo $pids | awk '{print $(NF-1)}'); }
RP_WORKERS=$(pgrep -P "$(cat "$T/rp/nginx.pid")" | tr '\n' ' ')

# CPU ticks (utime+stime) of the given pids
ticks() { t=0; for p in "$@"; do set -- $(cut -d' ' -f14,15 "/proc/$p/stat"); t=$((t + $1 + $2)); done; echo $t; }
# run LOADGEN-ARGS... measuring the CPU of the proxy processes in $PROCS
measure() {
	a=$(ticks $PROCS)
	out=$($LG "$@")
	b=$(ticks $PROCS)
	n=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
	hz=$(getconf CLK_TCK)
	echo "$out proxy_cpu_us/req=$(( (b - a) * 1000000 / hz / (n > 0 ? n : 1) ))"
}

echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "== keep-alive, $conns connections, ${secs}s, GET / (4-byte body)"
PROCS=""
printf '%-28s ' "direct TLS to nginx:";        $LG -P "$UP" -a ca.pem
PROCS=$TESTD_PID
printf '%-28s ' "nono proxy (MITM+inject):";   measure -P 443 -x "$PP" -t "$TOKEN" -a bundle.pem
PROCS=$RP_WORKERS
printf '%-28s ' "nginx reverse proxy:";        measure -P "$RP" -a ca.pem
PROCS=$TESTD1_PID
printf '%-28s ' "nono proxy, 1 loop thread:";  measure -P 443 -x "$PP1" -t "$TOKEN" -a bundle1.pem
PROCS=${MITM_PID:-}
[ $have_mitm = 1 ] && { printf '%-28s ' "mitmdump (addon):"; measure -P 443 -C "127.0.0.1:$UP" -x "$MITM" -t "$TOKEN" -a mitm-bundle.pem; }

echo "== new connection per request (handshake-bound), $conns connections, ${secs}s"
printf '%-28s ' "direct TLS to nginx:";        $LG -n -P "$UP" -a ca.pem
PROCS=$TESTD_PID
printf '%-28s ' "nono proxy (MITM+inject):";   measure -n -P 443 -x "$PP" -t "$TOKEN" -a bundle.pem
PROCS=$RP_WORKERS
printf '%-28s ' "nginx reverse proxy:";        measure -n -P "$RP" -a ca.pem
PROCS=$TESTD1_PID
printf '%-28s ' "nono proxy, 1 loop thread:";  measure -n -P 443 -x "$PP1" -t "$TOKEN" -a bundle1.pem
PROCS=${MITM_PID:-}
[ $have_mitm = 1 ] && { printf '%-28s ' "mitmdump (addon):"; measure -n -P 443 -C "127.0.0.1:$UP" -x "$MITM" -t "$TOKEN" -a mitm-bundle.pem; }

echo "== tunnel (no injection rule), 1 GiB from memory, reader discards (MSG_TRUNC); 3 rounds"
for round in 1 2 3; do
	printf '%-28s ' "raw bytes direct:";      "$T/loadgen" -R -c 1 -P "$RAW" -k
	a=$(ticks $TESTD_PID)
	printf '%-28s ' "raw bytes via tunnel:";  "$T/loadgen" -R -c 1 -x "$PP" -t "$TOKEN" -C raw.test:9
	echo "   (proxy CPU for the 1 GiB: $(( ($(ticks $TESTD_PID) - a) * 1000 / $(getconf CLK_TCK) )) ms)"
done
printf '%-28s ' "TLS download via tunnel:"
curl -s -o /dev/null --cacert ca.pem --proxy "http://nono:$TOKEN@127.0.0.1:$PP" \
	-w 'bytes=%{size_download} MB/s=%{speed_download}\n' https://tunnel.test/big | \
	awk '{split($2,a,"="); printf "%s MB/s=%.1f\n", $1, a[2]/1e6}'
printf '%-28s ' "TLS download direct:"
curl -s -o /dev/null --cacert ca.pem --resolve "tunnel.test:$UP:127.0.0.1" \
	-w 'bytes=%{size_download} MB/s=%{speed_download}\n' "https://tunnel.test:$UP/big" | \
	awk '{split($2,a,"="); printf "%s MB/s=%.1f\n", $1, a[2]/1e6}'
