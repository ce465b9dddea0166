#!/usr/bin/env bash
# Revocation benchmark, all in one run on this machine:
#   1. CRL: a store holding N revoked certificates (and N/10 good ones) of one RSA-2048 issuing
#      CA; `mailpki kms crl create` over it, wall time and peak memory.
#      Targets at N = 100,000: under 2 s and under 100 MiB.
#   2. OCSP: `mailpki server`'s publication listener pinned to one core (taskset), the load
#      generator on the other, the answer cache off, POSTs with SHA-1 CertIDs for revoked and
#      good certificates; answers per second against one core's raw RSA-2048 sign rate
#      (`openssl speed`, the same core), p50/p99; signed by the issuer, then by a delegated
#      responder. Target: >= 0.7x the raw sign rate.
# Usage: scripts/bench-revocation.sh [N] [SECONDS] [CLIENTS]   (defaults 100000, 10 s, 8)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-100000}
secs=${2:-10}
clients=${3:-8}
good=$((n / 10))
cargo build --release --locked --quiet -p mailpki-cli --bin mailpki \
    -p mailpki-kms --example revoked_store -p mailpki-server --example ocsp_load
mailpki=$repo/target/release/mailpki
fill=$repo/target/release/examples/revoked_store
load=$repo/target/release/examples/ocsp_load
source scripts/lib/bench-ca.sh

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home"
mkdir -p "$HOME"
cd "$work"
private_key_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["PrivateKeyLink"])'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

make_bench_ca
cat > mailpki.toml <<TOML
[kms]
database = "$work/kms.sqlite"
master_key_file = "$work/master.key"
user = "bench"
TOML
"$mailpki" --config mailpki.toml kms certificates import -f pkcs12 ca.p12 -p pw ca >/dev/null
key=$("$mailpki" --config mailpki.toml kms attributes get -i ca -a PrivateKeyLink | private_key_of)
echo "filling the store: $n revoked, $good good certificates"
filled=$("$fill" "$work/kms.sqlite" "$work/master.key" bench "$key" "$n" "$good" requests.txt)
size=$(stat -c %s kms.sqlite)

# 1. The CRL, through the CLI as an admin would make it.
/usr/bin/time -f "%e %M" -o crl.time "$mailpki" --config mailpki.toml --json kms crl create \
    -k "$key" --out ca.crl > crl.json
openssl crl -inform DER -in ca.crl -noout -CAfile ca.pem 2>&1 | grep -q "verify OK" \
    || { echo "the CRL does not verify" >&2; exit 1; }
listed=$(openssl crl -inform DER -in ca.crl -noout -text | grep -c "Serial Number:" || true)
[ "$listed" -eq "$n" ] || { echo "the CRL lists $listed serials, expected $n" >&2; exit 1; }

# 2. OCSP: one core for the server, the other for the load.
raw=$(taskset -c 0 openssl speed -seconds 5 -mr rsa2048 2>/dev/null | awk -F: '/^\+F2:/ {print $4; exit}')
ocsp_run() {
    local signer=$1 port
    port=$(free_port)
    cat > server.toml <<TOML
[kms]
database = "$work/kms.sqlite"
master_key_file = "$work/master.key"
user = "bench"
[server]
listen = "127.0.0.1:0"
[server.publish]
listen = "127.0.0.1:$port"
actor = "bench"
ocsp_signer = "$signer"
ocsp_cache = false
TOML
    taskset -c 0 "$mailpki" --config server.toml server serve > "server-$signer.out" 2>"server-$signer.log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 100); do [ -s "server-$signer.out" ] && break; sleep 0.1; done
    # One request first: the responder loads its issuer (and a delegated one its certificate).
    openssl ocsp -issuer ca.pem -CAfile root.pem -verify_other ca.pem -reqin <(head -1 requests.txt | base64 -d) \
        -url "http://127.0.0.1:$port/ocsp" -resp_text > "check-$signer.txt" 2>&1 || true
    grep -q "Response verify OK" "check-$signer.txt" \
        || { echo "$signer: the first answer does not verify" >&2; cat "check-$signer.txt" >&2; exit 1; }
    taskset -c 1 "$load" "http://127.0.0.1:$port" requests.txt "$clients" "$secs"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
issuer_run=$(ocsp_run issuer)
delegated_run=$(ocsp_run delegated)

python3 - "$n" "$good" "$filled" "$size" "$(cat crl.time)" "$(stat -c %s ca.crl)" "$raw" "$issuer_run" "$delegated_run" <<'PY'
import json, sys
n, good = int(sys.argv[1]), int(sys.argv[2])
filled = json.loads(sys.argv[3])
size = int(sys.argv[4])
crl_s, crl_kib = (float(x) for x in sys.argv[5].split())
crl_bytes = int(sys.argv[6])
raw = float(sys.argv[7])
runs = {"issuer": json.loads(sys.argv[8]), "delegated": json.loads(sys.argv[9])}
print(f"store: {n} revoked + {good} good certificates, filled in {filled['seconds']:.0f} s, "
      f"{size / 1048576:.0f} MiB ({size / (n + good):.0f} bytes per certificate)")
ok = crl_s < 2 and crl_kib < 100 * 1024
print(f"crl create over {n} revoked: {crl_s:.2f} s, peak {crl_kib / 1024:.0f} MiB, "
      f"{crl_bytes / 1048576:.1f} MiB DER  (targets < 2 s, < 100 MiB) {'OK' if ok else 'MISSED'}")
print(f"raw RSA-2048 sign, one core (openssl speed): {raw:.0f}/s")
for signer, r in runs.items():
    ratio = r["requests_per_second"] / raw
    print(f"OCSP, {signer:9} signer, cache off, {r['clients']} clients, server on one core: "
          f"{r['requests_per_second']:.0f}/s = {ratio:.2f}x raw  (target >= 0.70) "
          f"{'OK' if ratio >= 0.7 else 'MISSED'}; p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
          f"errors {r['errors']}")
PY
