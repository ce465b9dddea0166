#!/usr/bin/env bash
# Bulk onboarding benchmark, all in one run on this machine:
#   1. `google onboard` of N users (default 1000) against the emulator with 50 ms latency per
#      Gmail call and 2 % injected 5xx, against `kms certificates certify-batch` of the same
#      users (minting only, no network). Target: onboarding <= 1.15x the mint-only time.
#   2. Zero lost or duplicated users: every user has exactly one key pair and one identity.
#   3. Peak memory of the mailpki process (target <= 100 MiB), and its flatness from 1,000 to
#      10,000 users with minting out of the way (files given: `google smime import-csv` of
#      pre-made PKCS#12 files, P-256 so that making 10,000 of them is quick).
# Usage: scripts/bench-onboard.sh [N] [BIG]   (defaults 1000 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-1000}
big=${2:-10000}
cargo build --release --locked --quiet -p mailpki-cli
mailpki=$PWD/target/release/mailpki

work=$(mktemp -d)
emulator_pid=
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export HOME="$work/home" MAILPKI_USER=bench
mkdir -p "$HOME"
cd "$work"

source "$repo/scripts/lib/bench-ca.sh"
source "$repo/scripts/lib/bench-emulator.sh"
import_bench_ca
"$mailpki" kms sym keys create cse_key >/dev/null
urls="--crl-url http://pki.example.com/ca.crl --ca-issuers-url http://pki.example.com/ca.crt"

users() { for i in $(seq 1 "$1"); do echo "user$i@example.com"; done; }

start_emulator "$big"
admin() { python3 -c "import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={'content-type':'application/json'}))" "$url$1" "$2"; }
admin /admin/faults '{"latency_ms": 50, "error_rate": 0.02}'

echo "users: $n (memory check up to $big), cores: $(nproc)"

# 1. Mint only.
{ echo "email,subject,pkcs12_password"; users "$n" | sed 's/$/,,pw/'; } > mint.csv
read -r mint_s mint_kib _ < <(measure mint.log "$mailpki" kms certificates certify-batch --csv mint.csv -k "$key" --out-dir minted $urls)

# 2. Onboard the same users.
{ echo email; users "$n"; } > onboard.csv
read -r onboard_s onboard_kib onboard_code < <(measure onboard.log "$mailpki" google onboard --csv onboard.csv \
    --cse-key-id cse_key -i "$key" --kacls-url https://kms.example.com/google_cse --concurrency 32 --report report.csv)
faults=$(python3 -c "import json,urllib.request; r=json.load(urllib.request.urlopen('$url/admin/requests')); print(sum(1 for x in r if x['status']>=500))")
python3 - "$url" "$n" <<'PY' > exactly_once.txt
import json, sys, urllib.request
state = json.load(urllib.request.urlopen(sys.argv[1] + "/admin/state"))
n = int(sys.argv[2])
counts = [(len(u["key_pairs"]), len(u["identities"])) for e, u in state["users"].items() if int(e[4:].split("@")[0]) <= n]
lost = sum(1 for c in counts if c == (0, 0))
dup = sum(1 for c in counts if c[0] > 1 or c[1] > 1)
ok = sum(1 for c in counts if c == (1, 1))
print(f"{ok} {lost} {dup}")
PY
read -r once lost dup < exactly_once.txt

# 3. Files given: P-256 PKCS#12 files for every user, then import-csv of 1,000 and of all.
{ echo "email,subject,pkcs12_password"; users "$big" | sed 's/$/,,pw/'; } > files.csv
"$mailpki" kms certificates certify-batch --csv files.csv -k "$key" -a p256 --out-dir files $urls > /dev/null 2>&1
users "$big" | awk '{print $1",files/"$1".p12,pw"}' > import-all.csv
head -n "$n" import-all.csv > import-small.csv
admin /admin/faults '{"latency_ms": 50, "error_rate": 0}'
read -r small_s small_kib _ < <(measure import-small.log "$mailpki" google smime import-csv import-small.csv --concurrency 32)
read -r big_s big_kib _ < <(measure import-big.log "$mailpki" google smime import-csv import-all.csv --concurrency 32)

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
printf '%-48s %8.2f s\n' "certify-batch, $n users (mint only)" "$mint_s"
printf '%-48s %8.2f s   exit %s\n' "google onboard, $n users (50 ms, 2 % 5xx)" "$onboard_s" "$onboard_code"
echo "onboard / mint-only:             $(ratio "$onboard_s" "$mint_s")x   (target <= 1.15)"
echo "injected 5xx retried:            $faults"
echo "users with exactly one key pair and one identity: $once / $n   lost: $lost   duplicated: $dup"
echo "peak RSS, onboard $n:            $((onboard_kib / 1024)) MiB   (target <= 100)"
echo "peak RSS, import-csv $n files:   $((small_kib / 1024)) MiB   (${small_s} s)"
echo "peak RSS, import-csv $big files: $((big_kib / 1024)) MiB   (${big_s} s)"
