#!/usr/bin/env bash
# Bulk minting benchmark: `mailpki kms certificates certify-batch` for N users (RSA-2048,
# PKCS#12 per user) against, in the same run,
#   - the openssl CLI recipe per user (genpkey, req, x509 -req -extfile, pkcs12 -export), run
#     one user after another as scripts do, and also spread over all cores with xargs -P;
#   - the machine's bare RSA-2048 key generation rate on all cores (the upper bound).
# Usage: scripts/bench-issuance.sh [N]   (N >= 50; default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-300}
cores=$(nproc)
cargo build --release --locked --quiet -p mailpki-cli -p mailpki-issuance --bin mailpki --example keygen_rate
mailpki=$PWD/target/release/mailpki
keygen=$PWD/target/release/examples/keygen_rate

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" MAILPKI_USER=bench
mkdir -p "$HOME"
cd "$work"
now() { date +%s.%N; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

# The issuing CA (openssl CLI), imported into a fresh store.
source "$repo/scripts/lib/bench-ca.sh"
make_bench_ca
"$mailpki" kms certificates import -f pkcs12 ca.p12 -p pw ca >/dev/null
key=$("$mailpki" kms attributes get -i ca -a PrivateKeyLink | python3 -c 'import json,sys; print(json.load(sys.stdin)["PrivateKeyLink"])')

{ echo "email,subject,pkcs12_password"; for i in $(seq 1 "$n"); do echo "user$i@example.com,,pw$i"; done; } > users.csv

echo "users: $n, cores: $cores"

# 1. mailpki
t0=$(now)
"$mailpki" kms certificates certify-batch --csv users.csv -k "$key" --out-dir out \
    --crl-url http://pki.example.com/ca.crl --ca-issuers-url http://pki.example.com/ca.crt >/dev/null 2>&1
t1=$(now)
mailpki_s=$(python3 -c "print($t1-$t0)")
[ "$(($(wc -l < out/manifest.csv) - 1))" -eq "$n" ] || { echo "certify-batch minted the wrong count" >&2; exit 1; }

# 2. the openssl CLI recipe, per user.
cat > user.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=emailProtection
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=email:copy
certificatePolicies=2.23.140.1.5.1.3
crlDistributionPoints=URI:http://pki.example.com/ca.crl
authorityInfoAccess=caIssuers;URI:http://pki.example.com/ca.crt
EXT
cat > recipe.sh <<'RECIPE'
#!/usr/bin/env bash
set -e
i=$1; d=recipe/$i; mkdir -p "$d"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/key.pem" 2>/dev/null
openssl req -new -key "$d/key.pem" -subj "/CN=user$i@example.com/emailAddress=user$i@example.com" -out "$d/req.csr"
openssl x509 -req -in "$d/req.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days 365 -sha256 -extfile user.ext -out "$d/cert.pem" 2>/dev/null
openssl pkcs12 -export -inkey "$d/key.pem" -in "$d/cert.pem" -certfile ca.pem -out "$d/user.p12" -passout "pass:pw$i"
RECIPE
chmod +x recipe.sh
t0=$(now)
for i in $(seq 1 "$n"); do ./recipe.sh "$i"; done
t1=$(now)
recipe_s=$(python3 -c "print($t1-$t0)")
rm -rf recipe
t0=$(now)
seq 1 "$n" | xargs -P "$cores" -n 1 ./recipe.sh
t1=$(now)
recipe_par_s=$(python3 -c "print($t1-$t0)")

# 3. bare key generation on all cores.
keygen_rate=$("$keygen" "$n" 2048 "$cores" | sed -n 's/^keys_per_second=\([0-9.]*\).*/\1/p')

mailpki_rate=$(python3 -c "print($n/$mailpki_s)")
printf '%-42s %8.2f s  %7.2f users/s\n' "mailpki certify-batch" "$mailpki_s" "$mailpki_rate"
printf '%-42s %8.2f s  %7.2f users/s\n' "openssl recipe, one user at a time" "$recipe_s" "$(python3 -c "print($n/$recipe_s)")"
printf '%-42s %8.2f s  %7.2f users/s\n' "openssl recipe, xargs -P $cores" "$recipe_par_s" "$(python3 -c "print($n/$recipe_par_s)")"
printf '%-42s %8s    %7.2f keys/s\n' "bare RSA-2048 keygen, $cores threads" "" "$keygen_rate"
echo "speed-up vs recipe (sequential): $(ratio "$recipe_s" "$mailpki_s")x   (target >= 2.5)"
echo "speed-up vs recipe (parallel):   $(ratio "$recipe_par_s" "$mailpki_s")x"
echo "fraction of the keygen bound:    $(ratio "$mailpki_rate" "$keygen_rate")   (target >= 0.9)"
