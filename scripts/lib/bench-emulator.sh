# Sourced by the benchmarks that drive the emulator, after bench-ca.sh.

# measure OUT CMD...: runs CMD (its output to OUT) and prints "<seconds> <peak RSS KiB> <exit>".
measure() {
    local out=$1; shift
    python3 - "$out" "$@" <<'PY'
import resource, subprocess, sys, time
out = open(sys.argv[1], "w")
t0 = time.monotonic()
code = subprocess.call(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT)
elapsed = time.monotonic() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{elapsed:.2f} {peak} {code}")
PY
}

# The issuing CA (make_bench_ca) imported as `ca`; its private key's ID in $key.
import_bench_ca() {
    make_bench_ca
    "$mailpki" kms certificates import -f pkcs12 ca.p12 -p pw ca >/dev/null
    key=$("$mailpki" kms attributes get -i ca -a PrivateKeyLink | python3 -c 'import json,sys; print(json.load(sys.stdin)["PrivateKeyLink"])')
}

# start_emulator USERS: the emulator (no state file: it would be rewritten on every change)
# trusting root.pem, seeded over HTTP with user1..userUSERS@example.com. Sets $url and
# $emulator_pid, and points mailpki at it.
start_emulator() {
    "$mailpki" emulator serve --addr 127.0.0.1:0 --trusted-ca root.pem \
        --write-service-account sa.json > emulator.out 2>emulator.log &
    emulator_pid=$!
    until [ -s emulator.out ]; do kill -0 "$emulator_pid" || exit 1; sleep 0.1; done
    url=$(head -1 emulator.out)
    export MAILPKI_GMAIL_API_URL=$url MAILPKI_SERVICE_ACCOUNT_KEY=$PWD/sa.json
    python3 - "$url" "$1" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
conn = http.client.HTTPConnection(u.hostname, u.port)
for i in range(1, int(sys.argv[2]) + 1):
    conn.request("POST", "/admin/users", json.dumps({"email": f"user{i}@example.com"}), {"content-type": "application/json"})
    conn.getresponse().read()
PY
}
