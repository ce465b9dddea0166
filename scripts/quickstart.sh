#!/usr/bin/env bash
# The main job on embedded defaults: build mailpki, make a demo S/MIME CA (root → issuing
# intermediate) with the openssl CLI, import it into the default store
# (~/.local/share/mailpki/kms.sqlite), show its attributes and links, and create the CSE
# wrapping key, mints and lints a demo user's certificate, then onboards that user to Gmail CSE
# against the built-in Gmail emulator: key pair (certificate chain + wrapped key) and identity.
# Safe to run again: the demo objects keep their IDs (demo_issuer_ca, demo_cse_key, demo_user),
# so nothing a first run printed stops working; none collides with the README's examples.
set -euo pipefail

cd "$(dirname "$0")/.."
# CI runs it on the debug build its tests already made (MAILPKI_QUICKSTART_PROFILE=dev).
profile=${MAILPKI_QUICKSTART_PROFILE:-release}
cargo build --profile "$profile" --locked --quiet --bin mailpki
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
case $profile in dev) out=debug ;; *) out=$profile ;; esac
mailpki=$target/$out/mailpki

demo="${XDG_DATA_HOME:-$HOME/.local/share}/mailpki/demo"
mkdir -p "$demo"
chmod 700 "$demo"
cd "$demo"

# openssl chatters on stderr while it works; show it only when it fails.
ossl() {
    openssl "$@" 2>openssl.log || { cat openssl.log >&2; exit 1; }
}

if [ ! -f issuer_ca_certificate.p12 ]; then
    echo "==> making a demo CA in $demo"
    ossl req -x509 -newkey rsa:3072 -nodes -keyout root.key -out root.pem -days 3650 \
        -subj "/C=FR/O=Demo Organization/CN=Demo SMIME Root CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    ossl req -newkey rsa:2048 -nodes -keyout issuing.key -out issuing.csr \
        -subj "/C=FR/O=Demo Organization/CN=Demo SMIME Issuing CA"
    cat > issuing.ext <<'EXT'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://pki.example.com/root.crl
EXT
    ossl x509 -req -in issuing.csr -CA root.pem -CAkey root.key -CAcreateserial \
        -out issuing.pem -days 1825 -extfile issuing.ext
    ossl pkcs12 -export -inkey issuing.key -in issuing.pem -certfile root.pem \
        -name "Demo SMIME Issuing CA" -out issuer_ca_certificate.p12 -passout pass:demo-password
    chmod 600 ./*.key issuer_ca_certificate.p12
fi

# Imported once: a re-import would give the issuer key a new ID.
if ! "$mailpki" kms attributes get -i demo_issuer_ca >/dev/null 2>&1; then
    echo "==> mailpki kms certificates import -f pkcs12 issuer_ca_certificate.p12 -p *** demo_issuer_ca"
    "$mailpki" kms certificates import -f pkcs12 issuer_ca_certificate.p12 -p demo-password \
        --tag demo demo_issuer_ca
fi

echo "==> mailpki kms attributes get -i demo_issuer_ca"
"$mailpki" kms attributes get -i demo_issuer_ca
key=$("$mailpki" kms attributes get -i demo_issuer_ca -a PrivateKeyLink \
    | sed -n 's/.*"PrivateKeyLink": "\(.*\)".*/\1/p')

if ! "$mailpki" kms attributes get -i demo_cse_key >/dev/null 2>&1; then
    echo "==> mailpki kms sym keys create --algorithm aes --length 256 demo_cse_key"
    "$mailpki" kms sym keys create --algorithm aes --length 256 demo_cse_key
fi

if ! "$mailpki" kms attributes get -i demo_user >/dev/null 2>&1; then
    echo "==> mailpki kms certificates certify -g -k $key --subject-name \"CN=demo.user@example.com, ...\""
    "$mailpki" kms certificates certify -g -k "$key" \
        --subject-name "CN=demo.user@example.com, emailAddress=demo.user@example.com" \
        --crl-url http://pki.example.com/issuing.crl --ca-issuers-url http://pki.example.com/issuing.crt \
        --certificate-id demo_user --tag demo
fi

echo "==> mailpki kms certificates lint -c demo_user"
"$mailpki" kms certificates lint -c demo_user

echo "==> mailpki kms certificates list"
"$mailpki" kms certificates list

# CSE onboarding of the demo user against the built-in Gmail emulator (Google itself needs a
# service account with domain-wide delegation; the emulator plays Google here).
echo "==> mailpki emulator serve (background), trusting the demo root"
emulator_out=$(mktemp)
"$mailpki" emulator serve --addr 127.0.0.1:0 --trusted-ca root.pem \
    --user-email demo.user@example.com --write-service-account "$demo/emulator-sa.json" \
    >"$emulator_out" 2>/dev/null &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null; rm -f "$emulator_out"' EXIT
until [ -s "$emulator_out" ]; do
    kill -0 "$emulator_pid" 2>/dev/null || { echo "the emulator did not start" >&2; exit 1; }
    sleep 0.1
done
export MAILPKI_GMAIL_API_URL=$(head -1 "$emulator_out")
export MAILPKI_SERVICE_ACCOUNT_KEY="$demo/emulator-sa.json"
echo "    Gmail API emulator at $MAILPKI_GMAIL_API_URL"

echo "==> mailpki google key-pairs create --cse-key-id demo_cse_key -i $key demo.user@example.com"
keypair=$("$mailpki" google key-pairs create --cse-key-id demo_cse_key -i "$key" \
    --kacls-url https://kms.example.com/google_cse \
    --subject-name "CN=demo.user@example.com, emailAddress=demo.user@example.com" \
    demo.user@example.com 2>/dev/null)
echo "$keypair"

echo "==> mailpki google identities insert --user-id demo.user@example.com $keypair"
"$mailpki" google identities insert --user-id demo.user@example.com "$keypair"

echo "==> mailpki google identities get --user-id demo.user@example.com"
"$mailpki" --json google identities get --user-id demo.user@example.com
