#!/usr/bin/env bash
# Scale benchmark: what grows faster than the work, measured at several store sizes in one run.
#   1. Store: for each size, a fresh SQLite store holding that many users (a P-256 certificate
#      and key each, the user's tag, one in ten granted to an auditor), then, in-process, p50/p95
#      of a page of 50 certificates, a search by email, attributes get, a tag lookup and a
#      grant check; store file size per user. Target: p95 under 20 ms at 100,000 users and
#      within 2x of the figure at the smallest size.
#   2. Onboarding resume: at the largest size, every user journaled as onboarded by batch
#      `bench`; `google onboard` of all of them again, against the Gmail emulator (which knows
#      none of them: a Gmail call for a finished user would fail). Target: under 60 s, every
#      user skipped; peak memory reported.
#   3. certify-batch: 1,000 then 4,000 users (P-256 keys, so key generation does not hide the
#      batch's own costs) into fresh stores through the CLI. Target: 4,000 in <= 4.4x the
#      1,000-user time (linear).
# Usage: scripts/bench-scale.sh [SIZE...]   (default: 1000 10000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
cargo build --release --locked --quiet -p mailpki-cli --bin mailpki \
    -p mailpki-kms --example revoked_store --example store_scale
mailpki=$repo/target/release/mailpki
fill=$repo/target/release/examples/revoked_store
measure=$repo/target/release/examples/store_scale
source scripts/lib/bench-ca.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME="$work/home"
mkdir -p "$HOME"
cd "$work"
private_key_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["PrivateKeyLink"])'; }
make_bench_ca

# A fresh store in folder $1 with the bench CA imported; prints the issuer key's ID.
fresh_store() {
    mkdir -p "$1"
    cat > "$1/mailpki.toml" <<TOML
[kms]
database = "$work/$1/kms.sqlite"
master_key_file = "$work/$1/master.key"
user = "bench"
TOML
    "$mailpki" --config "$1/mailpki.toml" kms certificates import -f pkcs12 ca.p12 -p pw ca >/dev/null
    "$mailpki" --config "$1/mailpki.toml" kms attributes get -i ca -a PrivateKeyLink | private_key_of
}

# Onboards everyone in store-$1 again (batch `bench`, all journaled as done): "seconds KiB skipped".
onboard_resume() {
    local n=$1 key=$2 url pid
    "$mailpki" emulator serve --addr 127.0.0.1:0 --write-service-account sa.json > emulator.out 2>/dev/null &
    pid=$!
    for _ in $(seq 1 100); do [ -s emulator.out ] && break; sleep 0.1; done
    url=$(head -1 emulator.out)
    "$mailpki" --config "store-$n/mailpki.toml" kms sym keys create --algorithm aes --length 256 cse_key >/dev/null
    { echo "email"; for i in $(seq 0 $((n - 1))); do echo "user$i@example.com"; done; } > "onboard-$n.csv"
    /usr/bin/time -f "%e %M" -o onboard.time "$mailpki" --config "store-$n/mailpki.toml" google onboard \
        --csv "onboard-$n.csv" --batch-id bench --cse-key-id cse_key -i "$key" \
        --kacls-url https://kms.example.com/google_cse --api-url "$url" --service-account-key sa.json \
        --report "onboard-$n.report.csv" >/dev/null 2>&1 || true
    kill "$pid"
    echo "$(cat onboard.time) $(grep -c 'onboarded by an earlier run' "onboard-$n.report.csv" || true)"
}

results=()
largest=${sizes[-1]}
for n in "${sizes[@]}"; do
    key=$(fresh_store "store-$n")
    echo "filling a store with $n users" >&2
    "$fill" "$work/store-$n/kms.sqlite" "$work/store-$n/master.key" bench "$key" 0 "$n" /dev/null bench >/dev/null
    figures=$("$measure" "$work/store-$n/kms.sqlite" "$work/store-$n/master.key" bench "$n")
    results+=("$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["bytes"]=int(sys.argv[2]); print(json.dumps(d))' \
        "$figures" "$(stat -c %s "store-$n/kms.sqlite")")")
    if [ "$n" = "$largest" ]; then
        echo "onboarding $n users again, all done already" >&2
        resume=$(onboard_resume "$n" "$key")
    fi
    rm -rf "store-$n"
done

batch_seconds() {
    local n=$1 key
    key=$(fresh_store "batch-$n")
    { echo "email"; for i in $(seq 1 "$n"); do echo "user$i@example.com"; done; } > "users-$n.csv"
    local t0 t1
    t0=$(date +%s.%N)
    "$mailpki" --config "batch-$n/mailpki.toml" kms certificates certify-batch --csv "users-$n.csv" \
        -k "$key" -a p256 --out-dir "out-$n" -p pw --crl-url http://pki.example.com/ca.crl >/dev/null 2>&1
    t1=$(date +%s.%N)
    [ "$(($(wc -l < "out-$n/manifest.csv") - 1))" -eq "$n" ] || { echo "certify-batch $n: wrong count" >&2; exit 1; }
    python3 -c "print($t1 - $t0)"
}
echo "certify-batch, 1,000 and 4,000 users" >&2
b1=$(batch_seconds 1000)
b4=$(batch_seconds 4000)

python3 - "$b1" "$b4" "$resume" "${results[@]}" <<'PY'
import json, sys
b1, b4 = float(sys.argv[1]), float(sys.argv[2])
resume_s, resume_kib, skipped = sys.argv[3].split()
runs = [json.loads(a) for a in sys.argv[4:]]
ops = ["page_of_50", "search_by_email", "attributes_get", "tag_lookup", "grant_check"]
print(f"{'users':>8} {'objects':>8} {'bytes/user':>10}  " + "  ".join(f"{o:>17}" for o in ops))
for r in runs:
    cells = "  ".join(f"{r[o]['p50_ms']:6.2f}/{r[o]['p95_ms']:6.2f} ms" for o in ops)
    print(f"{r['users']:>8} {r['objects']:>8} {r['bytes'] / r['users']:>10.0f}  {cells}")
print("(each cell: p50/p95)")
small, big = runs[0], runs[-1]
for o in ops:
    p95, base = big[o]["p95_ms"], small[o]["p95_ms"]
    ok = p95 < 20 and p95 <= 2 * max(base, 0.5)
    print(f"{o:>17} at {big['users']}: p95 {p95:.2f} ms, {p95 / base if base else 0:.1f}x the "
          f"{small['users']}-user figure  (targets < 20 ms, <= 2x) {'OK' if ok else 'MISSED'}")
n = runs[-1]["users"]
ok = float(resume_s) < 60 and int(skipped) == n
print(f"google onboard resume, {n} users all done: {float(resume_s):.1f} s, peak "
      f"{int(resume_kib) / 1024:.0f} MiB, {skipped} skipped  (targets < 60 s, all skipped) "
      f"{'OK' if ok else 'MISSED'}")
ratio = b4 / b1
print(f"certify-batch: 1,000 users {b1:.1f} s, 4,000 users {b4:.1f} s = {ratio:.2f}x  "
      f"(target <= 4.4x) {'OK' if ratio <= 4.4 else 'MISSED'}")
PY
