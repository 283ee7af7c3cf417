#!/usr/bin/env bash
# Runs every libFuzzer target for a while and summarizes.
#
#   bash fuzz/run.sh BUILD_DIR [SECONDS]     (make fuzz FUZZ_SECONDS=N does this)
#
# Environment:
#   FUZZ_JOBS     parallel fuzzing processes per target (libFuzzer -fork=N); default 1
#   FUZZ_TARGETS  space-separated subset, e.g. "fuzz_gguf fuzz_tokenizer"; default all
#   FUZZ_MODEL    GGUF whose vocabulary fuzz_tokenizer / fuzz_chat use (default: the
#                 default model if fetched, else ../shared/testdata/g3-f32.gguf)
#   FUZZ_EXTRA    extra libFuzzer flags
#
# Each target keeps a growing corpus in BUILD_DIR/fuzz-corpus/<target>, seeded from the
# generated seeds (BUILD_DIR/fuzz-seeds) and fuzz/regressions/<target>. Crashes, leaks,
# timeouts and out-of-memory inputs land in BUILD_DIR/fuzz-artifacts/<target>/; copy them
# to fuzz/regressions/<target>/ once fixed. Prints one summary line per target and exits
# non-zero if any target found anything.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:?usage: fuzz/run.sh BUILD_DIR [SECONDS]}"
seconds="${2:-60}"
jobs="${FUZZ_JOBS:-1}"
build="$(cd "$build" && pwd)"
bin="$build/bin"
# The full reference set beside the repository, else the subset it carries.
testdata="${GEMMA_TESTDATA:-$root/../shared/testdata}"
[ -f "$testdata/g3-q4_k_m.gguf" ] || testdata="$root/tests/data/ref"

if [ -z "${FUZZ_MODEL:-}" ]; then
    if [ -f "$HOME/.cache/gemma/models/gemma-3-270m-q4_k_m.gguf" ]; then
        FUZZ_MODEL="$HOME/.cache/gemma/models/gemma-3-270m-q4_k_m.gguf"
    else
        FUZZ_MODEL="$testdata/g3-q4_k_m.gguf"
    fi
fi
export FUZZ_MODEL GEMMA_TESTDATA="$testdata"

targets="${FUZZ_TARGETS:-$(cd "$bin" && ls fuzz_* 2>/dev/null | tr '\n' ' ')}"
if [ -z "$targets" ]; then
    echo "fuzz/run.sh: no fuzz_* binaries in $bin (configure with -DGEMMA_FUZZ=ON)" >&2
    exit 1
fi

# Per-target input size caps: big enough for the seeds, small enough to mutate quickly.
max_len() {
    case "$1" in
        fuzz_gguf) echo 1048576 ;;
        fuzz_model) echo 262144 ;;
        fuzz_weights) echo 1024 ;;
        fuzz_sampler) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

rm -rf "$build/fuzz-seeds"
"$bin/gemma-fuzz-seeds" "$build/fuzz-seeds" "$testdata" || exit 1

# ASan/UBSan settings: leaks are findings; report UB as a crash.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

status=0
summary=()
for t in $targets; do
    corpus="$build/fuzz-corpus/$t"
    artifacts="$build/fuzz-artifacts/$t"
    log="$build/fuzz-logs/$t.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    seeds=("$corpus")
    [ -d "$build/fuzz-seeds/${t#fuzz_}" ] && seeds+=("$build/fuzz-seeds/${t#fuzz_}")
    [ -d "$here/regressions/${t#fuzz_}" ] && seeds+=("$here/regressions/${t#fuzz_}")
    flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048
           -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$artifacts/")
    dict="$here/${t#fuzz_}.dict"
    [ "$t" = fuzz_model ] && dict="$here/gguf.dict"
    [ -f "$dict" ] && flags+=(-dict="$dict")
    if [ "$jobs" -gt 1 ]; then
        # fork mode shares one corpus; by default it ignores timeouts and OOMs: don't.
        flags+=(-fork="$jobs" -ignore_crashes=0 -ignore_timeouts=0 -ignore_ooms=0)
    fi
    before=$(ls "$artifacts" | wc -l)
    echo "=== $t: ${seconds}s, $jobs job(s), log $log"
    # shellcheck disable=SC2086
    (cd "$build" && "$bin/$t" "${flags[@]}" ${FUZZ_EXTRA:-} "${seeds[@]}") >"$log" 2>&1
    rc=$?
    after=$(ls "$artifacts" | wc -l)
    # Executions: the final stats line, else the last status line ("#N ... cov: C").
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    [ -z "$execs" ] && execs=$(echo "$last" | sed -E 's/^#([0-9]+).*/\1/')
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')
    eps=$(echo "$last" | grep -oE 'exec/s:? [0-9]*' | awk '{print $2}')
    found=$((after - before))
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        status=1
        verdict="FAIL (exit $rc, $found new artifact(s) in $artifacts)"
        grep -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY' "$log" | head -5
    else
        verdict="ok"
    fi
    line=$(printf '%-16s execs %-10s cov %-6s ft %-7s exec/s %-7s crashes %-3s %s' \
        "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${eps:-?}" "$found" "$verdict")
    echo "$line"
    summary+=("$line")
done

echo
echo "=== fuzz summary (${seconds}s per target, $jobs job(s))"
printf '%s\n' "${summary[@]}"
exit $status
