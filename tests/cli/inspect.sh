#!/usr/bin/env bash
# gemma inspect: exit 0 and parseable JSON on every valid model; non-zero with a message on
# truncated or corrupted copies. Usage: inspect.sh PATH-TO-gemma
set -u
GEMMA=${1:?usage: inspect.sh PATH-TO-gemma}
TESTDATA=${GEMMA_TESTDATA:-../shared/testdata}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

err() { echo "FAIL: $*" >&2; fail=1; }

json_ok() { python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d.get("valid") else 1)'; }

models=()
for f in "$TESTDATA"/*.gguf; do [ -e "$f" ] && models+=("$f"); done
if [ -n "${GEMMA_TEST_MODEL:-}" ] && [ -r "$GEMMA_TEST_MODEL" ]; then models+=("$GEMMA_TEST_MODEL"); fi
[ ${#models[@]} -gt 0 ] || { echo "no models to inspect" >&2; exit 77; }

for m in "${models[@]}"; do
    "$GEMMA" inspect "$m" >"$tmp/out" 2>"$tmp/err" || err "inspect $m exited $?: $(cat "$tmp/err")"
    grep -q '^architecture: *gemma[34]$' "$tmp/out" || err "inspect $m: no architecture line"
    grep -q '^global layers:' "$tmp/out" || err "inspect $m: no global layers line"
    "$GEMMA" inspect "$m" --json --tensors >"$tmp/json" 2>"$tmp/err" || err "inspect --json $m exited $?"
    json_ok <"$tmp/json" || err "inspect --json $m: output is not a valid JSON report"
    "$GEMMA" inspect -m "$m" --kv --tensors --no-load >/dev/null 2>&1 || err "inspect --kv --tensors $m failed"
done

# The default model's known facts.
if [ -n "${GEMMA_TEST_MODEL:-}" ] && [ -r "$GEMMA_TEST_MODEL" ]; then
    out=$("$GEMMA" inspect "$GEMMA_TEST_MODEL" --json --no-load)
    echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["architecture"] == "gemma3" and d["size_label"] == "270M", d
assert d["n_layer"] == 18 and d["n_embd"] == 640 and d["head_dim"] == 256, d
assert d["global_layers"] == [5, 11, 17] and d["sliding_window"] == 512, d
assert d["vocab_size"] == 262144 and d["n_tensors"] == 236 and d["n_params"] == 268098176, d
' || err "default model: unexpected facts"
fi

# Truncated and corrupted copies must fail with a message on stderr.
src="${models[0]}"
size=$(stat -c %s "$src")
for cut in 0 3 20 100 1000 $((size / 2)) $((size - 1)); do
    head -c "$cut" "$src" >"$tmp/cut.gguf"
    if "$GEMMA" inspect "$tmp/cut.gguf" >/dev/null 2>"$tmp/err"; then
        err "truncated copy ($cut of $size bytes) accepted"
    elif ! grep -q 'invalid model file' "$tmp/err"; then
        err "truncated copy ($cut bytes): no message: $(cat "$tmp/err")"
    fi
done
"$GEMMA" inspect "$tmp/cut.gguf" --json >"$tmp/json" 2>/dev/null && err "--json on a truncated copy exited 0"
python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["valid"] is False and d["error"] else 1)' <"$tmp/json" \
    || err "--json on a truncated copy: no error object"
cp "$src" "$tmp/bad.gguf" && chmod u+w "$tmp/bad.gguf"
printf '\x04\x00\x00\x00' | dd of="$tmp/bad.gguf" bs=1 seek=4 conv=notrunc status=none
"$GEMMA" inspect "$tmp/bad.gguf" >/dev/null 2>"$tmp/err" && err "version 4 accepted"
grep -q 'unsupported GGUF version 4' "$tmp/err" || err "version 4: wrong message: $(cat "$tmp/err")"
"$GEMMA" inspect "$tmp/missing.gguf" >/dev/null 2>&1 && err "a missing file was accepted"

# Usage.
"$GEMMA" inspect --help | grep -q 'usage: gemma inspect' || err "--help"
"$GEMMA" inspect --bogus >/dev/null 2>&1; [ $? -eq 2 ] || err "unknown option should exit 2"

[ $fail -eq 0 ] && echo "inspect: all checks passed"
exit $fail
