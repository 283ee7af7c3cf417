#!/usr/bin/env bash
# The gemma tool against a hostile environment (docs/robustness.md, "Environment"): output
# that cannot be written, a FIFO as the model, the model file truncated while it runs, NaN
# weights, absurd thread counts, Ctrl-C at any moment, chat lines the model cannot take.
set -u
gemma="${1:?usage: hostile.sh PATH_TO_GEMMA}"
fail=0
check() { # description, condition already evaluated as $?
    if [[ $2 -ne 0 ]]; then echo "FAIL: $1"; fail=1; else echo "ok   $1"; fi
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A FIFO as the model returns at once (opening it must not wait for a writer).
mkfifo "$tmp/fifo"
for cmd in "inspect $tmp/fifo" "run -m $tmp/fifo -p hi"; do
    start=$(date +%s%N)
    out="$(timeout 5 "$gemma" $cmd 2>&1 </dev/null)"; rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    [[ $rc -eq 1 && "$out" == *"not a regular file"* && $ms -lt 1000 ]]
    check "gemma $cmd: FIFO refused in ${ms} ms (exit $rc)" $?
done

# Output errors: a full device is an error with a message; a closed pipe is not.
out="$("$gemma" logits --tokens '' --out "$tmp/x.ref" 2>&1)"; rc=$?
[[ $rc -eq 2 && "$out" == *"--tokens"* ]]; check "logits --tokens '' is a usage error (and, under ASan, leak-free)" $?

model="${GEMMA_TEST_MODEL:-}"
if [[ -z "$model" || ! -r "$model" ]]; then
    echo "skipped: the model tests need \$GEMMA_TEST_MODEL (run 'make model')"
    [[ $fail -eq 0 ]] && exit 77 || exit 1
fi

err="$("$gemma" run -m "$model" -p "Hello" -n 4 --temp 0 2>&1 >/dev/full)"; rc=$?
[[ $rc -eq 1 && "$err" == *"No space left"* ]]; check "run > /dev/full: exit 1 and says why (exit $rc)" $?
for cmd in "inspect $model" "tokenize -m $model Hello" "bench -m $model -p 4 -n 2 -r 1 -t 1 --json"; do
    err="$("$gemma" $cmd 2>&1 >/dev/full)"; rc=$?
    [[ $rc -ne 0 && "$err" == *"No space left"* ]]; check "gemma ${cmd%% *} > /dev/full: non-zero and says why (exit $rc)" $?
done
"$gemma" run -m "$model" -p "One, two, three," -n 64 --temp 0 2>"$tmp/err" | head -c 1 >/dev/null
rc=${PIPESTATUS[0]}
[[ ( $rc -eq 0 || $rc -eq 141 ) && ! -s "$tmp/err" ]]; check "run | head -c 1: quiet (exit $rc)" $?
mkdir -p "$tmp/out.ref/sub"
out="$("$gemma" logits -m "$model" --tokens 2,818 --gen 1 --out "$tmp/out.ref" 2>&1)"; rc=$?
[[ $rc -eq 1 && "$out" == *"cannot write"* && -z "$(ls "$tmp" | grep tmp-)" ]]
check "logits --out that cannot be replaced: exit 1, no temporary file left behind" $?
out="$("$gemma" logits -m "$model" --tokens 2,818 --gen 1 --out "$tmp/nodir/x.ref" 2>&1)"; rc=$?
[[ $rc -eq 1 && "$out" == *"cannot write"*"No such file"* ]]; check "logits --out in a missing folder: exit 1 and says why" $?
"$gemma" logits -m "$model" --tokens 2,818 --gen 1 --out "$tmp/ok.ref" >/dev/null 2>&1; rc=$?
[[ $rc -eq 0 && -s "$tmp/ok.ref" && -z "$(ls "$tmp" | grep tmp-)" ]]; check "logits --out writes the file and nothing else" $?

# -t far beyond the CPUs is capped with a warning.
err="$("$gemma" run -m "$model" -p "Hi" -n 1 --temp 0 -t 1000 2>&1 >/dev/null)"; rc=$?
[[ $rc -eq 0 && "$err" == *"-t 1000"*"online CPU"* ]]; check "-t 1000 warns and caps" $?

# The mapped model truncated mid-run: a clear E_IO message and exit 74, not "Bus error";
# with --no-mmap the run is unaffected.
truncate_during() { # extra-args... ; sets rc, err
    cp "$model" "$tmp/v.gguf"
    : >"$tmp/out"
    "$gemma" run -m "$tmp/v.gguf" -p "1, 2, 3, 4, 5," --temp 0 -c 1024 -t 2 "$@" >"$tmp/out" 2>"$tmp/err" &
    local pid=$!
    for _ in $(seq 600); do [[ -s "$tmp/out" ]] && break; sleep 0.05; done
    truncate -s 1000 "$tmp/v.gguf"
    wait $pid; rc=$?
    err="$(cat "$tmp/err")"
}
truncate_during -n 1000
[[ $rc -eq 74 && "$err" == *"E_IO"*"truncated"*"--no-mmap"* ]]; check "model truncated mid-run: exit 74 with an E_IO message (exit $rc)" $?
[[ $rc -eq 74 ]] || echo "  stderr: $err"
truncate_during -n 24 --no-mmap
[[ $rc -eq 0 && -z "$err" ]]; check "--no-mmap: truncation mid-run changes nothing (exit $rc)" $?

# NaN in a 1-D tensor (output_norm.weight, F32, first in the data section).
cp "$model" "$tmp/nan.gguf"
off="$("$gemma" inspect "$tmp/nan.gguf" --json --no-load | grep -o '"data_offset": *[0-9]*' | grep -o '[0-9]*$')"
printf '\x00\x00\xc0\x7f' | dd of="$tmp/nan.gguf" bs=1 seek="$off" conv=notrunc status=none
out="$("$gemma" inspect "$tmp/nan.gguf" 2>&1)"; rc=$?
[[ $rc -eq 0 ]]; check "inspect without --check-tensors does not scan the data" $?
out="$("$gemma" inspect "$tmp/nan.gguf" --check-tensors 2>&1)"; rc=$?
[[ $rc -eq 1 && "$out" == *"output_norm.weight"*NaN* ]]; check "inspect --check-tensors names the NaN tensor (exit $rc)" $?
out="$("$gemma" run -m "$tmp/nan.gguf" --check-tensors -p Hi -n 2 2>&1)"; rc=$?
[[ $rc -eq 1 && "$out" == *"output_norm.weight"* ]]; check "run --check-tensors refuses the model" $?
out="$("$gemma" run -m "$tmp/nan.gguf" -p Hi -n 2 2>&1)"; rc=$?
[[ $rc -eq 1 && "$out" == *"non-finite logit"* ]]; check "NaN logits are an error, not a token (exit $rc)" $?
rm -f "$tmp/nan.gguf" "$tmp/v.gguf"

# Ctrl-C at any moment ends the run with 130, also between the prompt and the generation.
# (job control on: a non-interactive shell's background jobs would start with SIGINT ignored)
set -m
lost=0
for d in 0.3 0.5 0.7 0.9 1.1 1.3 1.6 2.0; do
    "$gemma" run -m "$model" -p "1, 2, 3, 4, 5," --temp 0 -n 2000 -c 4096 -t 2 >/dev/null 2>&1 &
    pid=$!
    sleep $d
    kill -INT $pid
    wait $pid; rc=$?
    [[ $rc -eq 130 ]] || { lost=1; echo "  SIGINT after ${d}s: exit $rc"; }
done
set +m
[[ $lost -eq 0 ]]; check "SIGINT at 8 moments: always exit 130" $?

# Chat: a message longer than the context is refused and the conversation kept; a NUL in a
# line is refused, not cut.
long="$(printf 'word %.0s' $(seq 300))"
out="$(printf 'Hello\n%s\nHi again\n' "$long" | "$gemma" chat -m "$model" -c 128 --temp 0 -n 4 -v 2>&1)"; rc=$?
[[ $rc -eq 0 && "$out" == *"not sent"*"do not fit"*"conversation is kept"* && "$out" != *"reset"*"larger -c to keep"* ]]
check "chat: an over-long message is refused, the history kept" $?
n_ctx_lines="$(grep -o 'context [0-9]*/128' <<<"$out" | tr '\n' ' ')"
[[ "$n_ctx_lines" =~ context\ ([0-9]+)/128\ context\ ([0-9]+)/128 ]] && (( BASH_REMATCH[2] > BASH_REMATCH[1] ))
check "chat: the turn after it continues the conversation ($n_ctx_lines)" $?
out="$(printf 'Hi\0there\n' | "$gemma" chat -m "$model" --temp 0 -n 2 2>&1)"; rc=$?
[[ $rc -eq 0 && "$out" == *"NUL byte"* ]]; check "chat: a NUL in a line is refused" $?
out="$(printf 'Hi\0there' | "$gemma" run -m "$model" --chat -n 2 2>&1)"; rc=$?
[[ $rc -eq 1 && "$out" == *"NUL byte"* ]]; check "run --chat: a NUL in the prompt is refused" $?

exit $fail
