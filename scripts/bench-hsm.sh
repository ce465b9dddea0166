#!/usr/bin/env bash
# The issuer's key in an HSM (SoftHSM2 over PKCS#11) against the same key sealed in the store,
# in the same run: `certify-batch` of N users into fresh stores, each user a P-256 key (quick,
# so the issuer's signature weighs as much as it can), a certificate and a PKCS#12 file.
# Usage: scripts/bench-hsm.sh [N] [ROUNDS]   (default 1000 users, 3 rounds each, alternated)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-1000}
rounds=${2:-3}
module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
    [ -f "$m" ] && module=$m && break
done
[ -n "$module" ] || { echo "install Debian's softhsm2" >&2; exit 1; }
cargo build --release --locked --quiet -p mailpki-cli --bin mailpki
mailpki=$PWD/target/release/mailpki

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
now() { date +%s.%N; }
source "$repo/scripts/lib/bench-ca.sh"
make_bench_ca
{ echo "email,subject,pkcs12_password"; for i in $(seq 1 "$n"); do echo "user$i@example.com,,pw$i"; done; } > users.csv

# One home per kind of key: a store with the issuer sealed in it, and one with the issuer in
# a SoftHSM token (its own token folder).
setup() {
    local kind=$1
    local home=$work/$kind
    mkdir -p "$home/.config/mailpki" "$home/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$home/tokens" > "$home/softhsm2.conf"
    SOFTHSM2_CONF=$home/softhsm2.conf softhsm2-util --init-token --free --label bench \
        --so-pin 123456 --pin 4711 >/dev/null
    printf '[hsm]\nmodule = "%s"\ntoken = "bench"\n' "$module" > "$home/.config/mailpki/config.toml"
}
run() {
    local kind=$1 round=$2
    local home=$work/$kind
    local data=$home/store-$round
    local flag=""; [ "$kind" = hsm ] && flag=--hsm
    env HOME="$home" SOFTHSM2_CONF="$home/softhsm2.conf" MAILPKI_HSM_PIN=4711 MAILPKI_USER=bench \
        "$mailpki" --database "$data/kms.sqlite" kms certificates import -f pkcs12 ca.p12 -p pw $flag ca >/dev/null
    local key
    key=$(env HOME="$home" MAILPKI_USER=bench "$mailpki" --database "$data/kms.sqlite" \
        kms attributes get -i ca -a PrivateKeyLink | python3 -c 'import json,sys; print(json.load(sys.stdin)["PrivateKeyLink"])')
    local t0 t1
    t0=$(now)
    env HOME="$home" SOFTHSM2_CONF="$home/softhsm2.conf" MAILPKI_HSM_PIN=4711 MAILPKI_USER=bench \
        "$mailpki" --database "$data/kms.sqlite" kms certificates certify-batch --csv users.csv \
        -k "$key" -a p256 --out-dir "$data/out" --crl-url http://pki.example.com/ca.crl \
        --ca-issuers-url http://pki.example.com/ca.crt >/dev/null 2>&1
    t1=$(now)
    [ "$(($(wc -l < "$data/out/manifest.csv") - 1))" -eq "$n" ] || { echo "$kind: wrong count" >&2; exit 1; }
    # Every file's certificate verifies; spot-check the first and the last.
    for u in 1 "$n"; do
        openssl pkcs12 -in "$data/out/user$u@example.com.p12" -passin "pass:pw$u" -clcerts -nokeys 2>/dev/null \
            | openssl verify -CAfile root.pem -untrusted ca.pem >/dev/null
    done
    python3 -c "print($t1-$t0)"
}
setup stored
setup hsm
echo "users: $n, P-256 leaves, RSA-2048 issuer, cores: $(nproc), rounds: $rounds (alternated)"
stored_times=(); hsm_times=()
for r in $(seq 1 "$rounds"); do
    stored_times+=("$(run stored "$r")")
    hsm_times+=("$(run hsm "$r")")
done
python3 - "$n" "${stored_times[*]}" "${hsm_times[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
stored = [float(x) for x in sys.argv[2].split()]
hsm = [float(x) for x in sys.argv[3].split()]
ms, mh = statistics.median(stored), statistics.median(hsm)
print(f"stored key : {' '.join(f'{t:.2f}' for t in stored)} s  (median {ms:.2f} s, {n/ms:.0f} users/s)")
print(f"key in HSM : {' '.join(f'{t:.2f}' for t in hsm)} s  (median {mh:.2f} s, {n/mh:.0f} users/s)")
print(f"HSM / stored rate: {ms/mh:.2f}x (target >= 0.9x)")
PY
