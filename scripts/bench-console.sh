#!/usr/bin/env bash
# Console benchmark: a SQLite store holding N certificates (P-256 leaves from one stored
# issuer, a tenth of them revoked), `mailpki server` with the console and /metrics on, and
# 8 signed-in clients loading pages for SECONDS each:
#   - the certificates page: one page of 50 Active certificates expiring in the next year;
#   - the overview: the expiry timeline (52 weekly counts) and the counts by state;
#   - /metrics (one client): requests by route, certificates by state and days left.
# Targets: pages p95 < 150 ms under 8 clients, /metrics p95 < 50 ms, at N = 100,000.
# Counts are reused for 15 s ([server] counts_refresh_seconds); the overview and /metrics are
# measured again on a server that counts the store on every request, for what a pass costs.
# Usage: scripts/bench-console.sh [N] [SECONDS]   (defaults 100000, 10)
# With BENCH_STORE=DIR the filled store is kept in DIR and reused by the next run with the
# same N (filling 100,000 takes minutes; the figures are taken on a fresh server each time).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-100000}
secs=${2:-10}
cargo build --release --locked --quiet -p mailpki-cli --bin mailpki -p mailpki-kms --example revoked_store \
    -p mailpki-server --example console_load
mailpki=$repo/target/release/mailpki
fill=$repo/target/release/examples/revoked_store
load=$repo/target/release/examples/console_load
source scripts/lib/bench-ca.sh

if [ -n "${BENCH_STORE:-}" ]; then
    work=$BENCH_STORE/console-$n
    mkdir -p "$work"
else
    work=$(mktemp -d)
fi
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -n "${BENCH_STORE:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home"
mkdir -p "$HOME"
cd "$work"
[ -s ca.p12 ] || make_bench_ca
cat > server.toml <<TOML
[kms]
database = "$work/kms.sqlite"
master_key_file = "$work/master.key"
user = "bench"
[server]
listen = "127.0.0.1:0"
admins = ["bench"]
metrics = true
[server.console]
TOML
if [ ! -s filled ]; then
    rm -f kms.sqlite*
    "$mailpki" --config server.toml kms certificates import -f pkcs12 ca.p12 -p pw ca >/dev/null
    key=$("$mailpki" --config server.toml kms attributes get -i ca -a PrivateKeyLink |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["PrivateKeyLink"])')
    echo "filling a store with $n certificates" >&2
    "$fill" "$work/kms.sqlite" "$work/master.key" bench "$key" $((n / 10)) $((n - n / 10)) /dev/null >/dev/null
    echo "$n" > filled
fi
token=$("$mailpki" --config server.toml --json server token create bench 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
# Starts the server with [server] counts_refresh_seconds = $1 and signs a client in: $url, $cookie.
serve() {
    [ -n "$server_pid" ] && kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
    sed -i '/^counts_refresh_seconds/d' server.toml
    sed -i "s/^metrics = true$/metrics = true\ncounts_refresh_seconds = $1/" server.toml
    rm -f url.txt
    "$mailpki" --config server.toml server serve > url.txt 2>server.log &
    server_pid=$!
    for _ in $(seq 1 100); do [ -s url.txt ] && break; sleep 0.1; done
    url=$(head -1 url.txt)
    cookie=$(curl -s -o /dev/null -D - --data-urlencode "token=$token" "$url/console/login/token" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(mailpki_session=[^;]*\).*/\1/p')
    [ -n "$cookie" ] || { echo "no console session" >&2; exit 1; }
}
serve 15
now=$(date +%s)
page="/console/certificates?state=Active&expires_after=$now&expires_before=$((now + 366 * 86400))"
# The page must list 50 certificates and offer the next page, or the figure means nothing.
rows=$(curl -s -H "Cookie: $cookie" "$url$page" | grep -c '<tr><td><a href="/console/certificates/' || true)
[ "$rows" = 50 ] || { echo "the certificates page lists $rows rows, not 50" >&2; exit 1; }

echo "store: $n certificates, $(du -m kms.sqlite | cut -f1) MiB; 8 clients, ${secs}s per page"
results=()
for what in "certificates|$page|8" "overview|/console|8" "metrics|/metrics|1"; do
    IFS='|' read -r name path clients <<< "$what"
    results+=("$name $("$load" "$url" "$cookie" "$path" "$clients" "$secs")")
done
serve 0
for what in "overview-uncached|/console|8" "metrics-uncached|/metrics|1"; do
    IFS='|' read -r name path clients <<< "$what"
    results+=("$name $("$load" "$url" "$cookie" "$path" "$clients" "$secs")")
done
python3 - "${results[@]}" <<'PY'
import json, sys
targets = {"certificates": 150, "overview": 150, "metrics": 50,
           "overview-uncached": 150, "metrics-uncached": 50}
for line in sys.argv[1:]:
    name, summary = line.split(" ", 1)
    r = json.loads(summary)
    ok = r["p95_ms"] < targets[name] and r["errors"] == 0
    print(f"{name:<18} {r['clients']} clients {r['requests_per_second']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms"
          f"  p95 {r['p95_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}"
          f"  (target p95 < {targets[name]} ms) {'OK' if ok else 'MISSED'}")
PY
