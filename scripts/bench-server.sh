#!/usr/bin/env bash
# KMS server benchmark, all in one run on this machine:
#   1. Certify throughput: `kms certificates certify-batch` of N users (RSA-2048 key, S/MIME
#      certificate and PKCS#12 each) on the embedded SQLite store, against the same users
#      through two `mailpki server` instances on one PostgreSQL (two client processes, half
#      the users each, one per instance; the servers mint). Target: server >= 0.95x embedded.
#   2. Attributes-get latency p50/p99 under 32 concurrent clients spread over both instances
#      (API-token authentication on every request).
# PostgreSQL: a private cluster from Debian's package, or $MAILPKI_BENCH_POSTGRES (a URL with
# the right to create databases).
# Usage: scripts/bench-server.sh [N] [SECONDS]   (defaults 200 users, 10 s of reads)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-200}
secs=${2:-10}
cores=$(nproc)
cargo build --release --locked --quiet -p mailpki-cli -p mailpki-server --bin mailpki --example attributes_load
mailpki=$repo/target/release/mailpki
load=$repo/target/release/examples/attributes_load
source scripts/lib/postgres.sh
source scripts/lib/bench-ca.sh

work=$(mktemp -d)
pids=()
PG_STOP=
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$PG_STOP" ] && eval "$PG_STOP"
    rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" MAILPKI_USER=bench
mkdir -p "$HOME"
cd "$work"
now() { date +%s.%N; }
secret() { python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'; }
private_key_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["PrivateKeyLink"])'; }

make_bench_ca
urls=(--crl-url http://pki.example.com/ca.crl --ca-issuers-url http://pki.example.com/ca.crt)
{ echo "email"; for i in $(seq 1 "$n"); do echo "user$i@example.com"; done; } > users.csv
{ echo "email"; for i in $(seq 1 2 "$n"); do echo "user$i@example.com"; done; } > users-a.csv
{ echo "email"; for i in $(seq 2 2 "$n"); do echo "user$i@example.com"; done; } > users-b.csv
echo "users: $n, cores: $cores"

# 1a. Embedded: the store in the CLI's process, SQLite.
"$mailpki" kms certificates import -f pkcs12 ca.p12 -p pw ca >/dev/null
key=$("$mailpki" kms attributes get -i ca -a PrivateKeyLink | private_key_of)
t0=$(now)
"$mailpki" kms certificates certify-batch --csv users.csv -k "$key" --out-dir out-embedded \
    --pkcs12-password pw "${urls[@]}" >/dev/null 2>&1
t1=$(now)
embedded_s=$(python3 -c "print($t1-$t0)")
[ "$(($(wc -l < out-embedded/manifest.csv) - 1))" -eq "$n" ] || { echo "embedded: wrong count" >&2; exit 1; }

# 1b. Two server instances on one PostgreSQL database.
if [ -n "${MAILPKI_BENCH_POSTGRES:-}" ]; then
    PG_URL=$MAILPKI_BENCH_POSTGRES
else
    start_postgres
fi
db="mailpki_bench_$$"
psql -q "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
[ -n "${MAILPKI_BENCH_POSTGRES:-}" ] && PG_STOP="psql -q '$PG_URL' -c 'DROP DATABASE $db WITH (FORCE)'"
cat > server.toml <<TOML
[kms]
database = "${PG_URL%/*}/$db"
master_key_file = "$work/server/master.key"
user = "bench"
[server]
listen = "127.0.0.1:0"
admins = ["bench"]
[issuance]
crl_urls = ["http://pki.example.com/ca.crl"]
ca_issuers_urls = ["http://pki.example.com/ca.crt"]
TOML
start_server() {
    local out=$1
    "$mailpki" --config server.toml server serve > "$out" 2>"$out.log" &
    pids+=($!)
    for _ in $(seq 1 100); do [ -s "$out" ] && break; sleep 0.1; done
    head -1 "$out"
}
url_a=$(start_server a.url)
url_b=$(start_server b.url)
export MAILPKI_KMS_TOKEN
MAILPKI_KMS_TOKEN=$("$mailpki" --config server.toml --json server token create bench 2>/dev/null | secret)
MAILPKI_KMS_URL=$url_a "$mailpki" kms certificates import -f pkcs12 ca.p12 -p pw ca >/dev/null
key=$(MAILPKI_KMS_URL=$url_a "$mailpki" kms attributes get -i ca -a PrivateKeyLink | private_key_of)
t0=$(now)
MAILPKI_KMS_URL=$url_a "$mailpki" kms certificates certify-batch --csv users-a.csv -k "$key" \
    --out-dir out-a --pkcs12-password pw >/dev/null 2>&1 &
client_a=$!
MAILPKI_KMS_URL=$url_b "$mailpki" kms certificates certify-batch --csv users-b.csv -k "$key" \
    --out-dir out-b --pkcs12-password pw >/dev/null 2>&1 &
client_b=$!
wait "$client_a" "$client_b"
t1=$(now)
server_s=$(python3 -c "print($t1-$t0)")
minted=$(( $(wc -l < out-a/manifest.csv) + $(wc -l < out-b/manifest.csv) - 2 ))
[ "$minted" -eq "$n" ] || { echo "server: minted $minted of $n" >&2; exit 1; }
stored=$(MAILPKI_KMS_URL=$url_b "$mailpki" --json kms certificates list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$stored" -eq "$((n + 2))" ] || { echo "server: $stored certificates stored, expected $((n + 2))" >&2; exit 1; }

# 2. Attributes-get latency under 32 concurrent clients over both instances.
latency=$("$load" "$url_a,$url_b" "$MAILPKI_KMS_TOKEN" ca 32 "$secs")

python3 - "$n" "$embedded_s" "$server_s" "$latency" <<'PY'
import json, sys
n, embedded, server, latency = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
ratio = embedded / server
print(f"certify, embedded SQLite:           {embedded:7.1f} s  {n/embedded:6.1f} users/s")
print(f"certify, 2 servers on PostgreSQL:   {server:7.1f} s  {n/server:6.1f} users/s")
print(f"  server / embedded throughput:     {ratio:.2f}x  (target >= 0.95) {'OK' if ratio >= 0.95 else 'MISSED'}")
print(f"attributes get, {latency['clients']} clients, 2 instances: "
      f"{latency['requests_per_second']:.0f} req/s, p50 {latency['p50_ms']:.2f} ms, "
      f"p99 {latency['p99_ms']:.2f} ms, max {latency['max_ms']:.1f} ms, errors {latency['errors']}")
PY
