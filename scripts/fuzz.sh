#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ for SECONDS each (default 600), one after another, and
# prints a line per target: runs, coverage, and whether it found a crash (saved under
# fuzz/artifacts/TARGET/; a crash becomes a regression test in the crate it names).
# cargo fuzz needs nightly features: a nightly toolchain with AddressSanitizer when one is
# installed, else the stable one with RUSTC_BOOTSTRAP=1 and no sanitizer.
# CI runs it for a few seconds per target, from the checked-in seeds (fuzz/seeds/).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# MAILPKI_FUZZ_SANITIZER=none skips AddressSanitizer (CI's smoke run: the Rust side is
# memory-safe and OpenSSL is not instrumented either way; ASan triples the build).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz run -O -s "${MAILPKI_FUZZ_SANITIZER:-address}")
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz run -O -s none)
fi
# OpenSSL's never-freed global state is not a leak of ours (fuzz/lsan.supp).
export LSAN_OPTIONS="suppressions=$PWD/lsan.supp:print_suppressions=0"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
status=0
for t in "${targets[@]}"; do
    # New inputs go to corpus/ (not checked in); seeds/ holds the checked-in starting points.
    mkdir -p "corpus/$t" "seeds/$t"
    log=$(mktemp)
    if "${fuzz[@]}" "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" >"$log" 2>&1; then
        echo "$t: $(grep -E '^Done' "$log" | tail -1) $(grep -oE 'cov: [0-9]+' "$log" | tail -1), no crash"
    else
        echo "$t: CRASH, see fuzz/artifacts/$t/ and the end of $log"
        status=1
    fi
done
exit $status
