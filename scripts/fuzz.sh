#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the settings parser, the event parser, the
# Kustomer record parsers and the Data Return record reader: each target in fuzz/fuzz_targets/
# runs for a fixed number of executions, then a table says how it went. Exits non-zero when a target crashes, naming the
# input that did it.
#
#   RUNS=100000               executions per target (default 100000); RUNS_<target>=… for one
#   FUZZ_TARGETS="settings event records outcome"   which targets, in this order (default: all four)
#   MAX_LEN=65536             longest input libFuzzer makes, in bytes
#   FUZZ_SANITIZER=none       cargo-fuzz's sanitizer: none by default, as the crate has no
#                             `unsafe` and AddressSanitizer makes the targets 5 times slower
#                             here; FUZZ_SANITIZER=address for cargo-fuzz's own default
#
# Built with `-O`: fuzz/Cargo.toml's release profile turns debug assertions and overflow checks
# on (for all crates but one known case, see there). Needs the nightly toolchain (libFuzzer's instrumentation is nightly-only). Installs
# cargo-fuzz from crates.io the first time (idempotent). Each target starts from its seeds
# (fuzz/seeds/<target>/) and the crashes found before (fuzz/regressions/<target>/), copied
# into a working corpus (fuzz/corpus/<target>/, kept between runs, not in git), so the seeds
# stay as they are (fuzz/json.dict is libFuzzer's dictionary of JSON tokens and the keys the
# parsers read); crashes go to fuzz/artifacts/<target>/, the log to
# fuzz/artifacts/<target>.log. `cargo test --test fuzz_regressions` replays seeds and
# regressions on stable.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

RUNS="${RUNS:-100000}"
FUZZ_TARGETS="${FUZZ_TARGETS:-settings event records outcome}"
MAX_LEN="${MAX_LEN:-65536}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
CARGO_FUZZ_VERSION=0.13.2

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

for target in $FUZZ_TARGETS; do
    if [[ ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
        echo "fuzz: no target $target (there are: $(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||' | tr '\n' ' '))" >&2
        exit 2
    fi
done

# Build first, so that the times below are fuzzing time alone.
for target in $FUZZ_TARGETS; do
    cargo +nightly fuzz build -O --sanitizer "$FUZZ_SANITIZER" "$target"
done

mkdir -p fuzz/artifacts
rows=()
failed=0
for target in $FUZZ_TARGETS; do
    corpus="fuzz/corpus/$target"
    log="fuzz/artifacts/$target.log"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    cp fuzz/seeds/"$target"/* "$corpus"/
    if [[ -d "fuzz/regressions/$target" ]]; then
        cp fuzz/regressions/"$target"/* "$corpus"/ 2>/dev/null || true
    fi
    runs_override="RUNS_$target"
    runs="${!runs_override:-$RUNS}"
    echo "fuzz: $target, $runs executions (log: $log)"
    start=$(date +%s%N)
    status=0
    cargo +nightly fuzz run -O --sanitizer "$FUZZ_SANITIZER" "$target" "$corpus" -- \
        -runs="$runs" -max_len="$MAX_LEN" -dict=fuzz/json.dict -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    seconds=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    if [[ $status -eq 0 ]]; then
        result=ok
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        result="CRASH: ${artifact:-see $log}"
        tail -n 40 "$log" >&2
        if [[ -n "$artifact" ]]; then
            echo "fuzz: $target crashed; minimize with: cargo +nightly fuzz tmin -O $target $artifact" >&2
            echo "fuzz: then add the minimized input to fuzz/regressions/$target/ (cargo test replays it)" >&2
        fi
    fi
    rows+=("$(printf '%-10s %12s %10s %9s  %s' "$target" "${executions:-?}" "${per_second:-?}" "$seconds" "$result")")
done

echo
printf '%-10s %12s %10s %9s  %s\n' target executions exec/s 'time (s)' result
for row in "${rows[@]}"; do
    echo "$row"
done
exit "$failed"
