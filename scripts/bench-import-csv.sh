#!/usr/bin/env bash
# `google smime import-csv` at size against the emulator: peak memory and time of the mailpki
# process, the report streamed to a file.
#   1. FILES users (default 10,000), each row a user's own PKCS#12 (P-256, made first by
#      certify-batch), all uploaded, then the same CSV again: all found in Gmail, skipped.
#   2. ROWS users (default 100,000), every row failing (its file is not there): the summary
#      keeps the first 1,000 rows needing attention, the report has them all.
# Target: peak RSS under 50 MiB for 100,000 rows, the report complete.
# Usage: scripts/bench-import-csv.sh [ROWS] [FILES]   (a user's row appears once: the reader
# refuses duplicates, so every row is a distinct user)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
rows=${1:-100000}
files=${2:-10000}
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
{ echo "email,subject,pkcs12_password"; for i in $(seq 1 "$files"); do echo "user$i@example.com,,pw"; done; } > files.csv
"$mailpki" kms certificates certify-batch --csv files.csv -k "$key" -a p256 --out-dir files \
    --crl-url http://pki.example.com/ca.crl --ca-issuers-url http://pki.example.com/ca.crt >/dev/null 2>&1
start_emulator "$files"

python3 - "$rows" "$files" <<'PY'
import sys
rows, files = int(sys.argv[1]), int(sys.argv[2])
with open("import.csv", "w") as f:
    for u in range(1, files + 1):
        f.write(f"user{u}@example.com,files/user{u}@example.com.p12,pw\n")
with open("missing.csv", "w") as g:
    for r in range(1, rows + 1):
        g.write(f"user{r}@example.com,files/absent-{r}.p12,pw\n")
PY

echo "users with files: $files, failing rows: $rows, cores: $(nproc)"
read -r ok_s ok_kib ok_code < <(measure import.log "$mailpki" google smime import-csv import.csv \
    --concurrency 32 --report report.csv)
read -r again_s again_kib again_code < <(measure again.log "$mailpki" google smime import-csv import.csv \
    --concurrency 32 --report again-report.csv)
read -r bad_s bad_kib bad_code < <(measure missing.log "$mailpki" google smime import-csv missing.csv \
    --concurrency 32 --report missing-report.csv)
python3 - "$rows" "$files" <<'PY'
import csv, collections, sys
rows, files = int(sys.argv[1]), int(sys.argv[2])
ok = collections.Counter(r["outcome"] for r in csv.DictReader(open("report.csv")))
again = collections.Counter(r["outcome"] for r in csv.DictReader(open("again-report.csv")))
bad = collections.Counter(r["outcome"] for r in csv.DictReader(open("missing-report.csv")))
print(f"report, files given: {dict(ok)}  (expected done {files})")
print(f"report, again: {dict(again)}  (expected skipped {files})")
print(f"report, files missing: {dict(bad)}  (expected failed {rows})")
if ok["failed"]:
    print("first failure:", next(r for r in csv.DictReader(open("report.csv")) if r["outcome"] == "failed"))
assert ok["done"] == files and again["skipped"] == files, "the report is incomplete"
assert bad["failed"] == rows, "the failing report is incomplete"
PY
echo "import-csv, $files files:        ${ok_s} s, peak RSS $((ok_kib / 1024)) MiB, exit $ok_code"
echo "import-csv again, $files files:  ${again_s} s, peak RSS $((again_kib / 1024)) MiB, exit $again_code"
echo "import-csv, $rows rows failing:  ${bad_s} s, peak RSS $((bad_kib / 1024)) MiB, exit $bad_code   (target < 50 MiB)"
grep -c "^warning: line" missing.log | sed 's/^/rows listed on the terminal (failing run): /'
