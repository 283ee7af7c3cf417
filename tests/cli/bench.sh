#!/usr/bin/env bash
# gemma bench --json on the default model: valid JSON with the fields tools rely on.
set -u
gemma="${1:?usage: bench.sh PATH_TO_GEMMA}"
model="${GEMMA_TEST_MODEL:-}"
if [[ -z "$model" || ! -r "$model" ]]; then
    echo "skipped: needs \$GEMMA_TEST_MODEL (run 'make model')"
    exit 77
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$gemma" bench -m "$model" -p 16 -n 4 -r 1 --json >"$out" || { echo "FAIL: gemma bench exited $?"; exit 1; }
python3 - "$out" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
assert isinstance(rows, list) and rows, "not a non-empty JSON list"
need = ("test", "tokens_per_second", "stdev", "threads", "model_type", "n_prompt", "n_gen")
for r in rows:
    missing = [k for k in need if k not in r]
    assert not missing, f"{r.get('test')}: missing {missing}"
tests = {r["test"]: r for r in rows}
for name, np_, ng in (("pp16", 16, 0), ("tg4", 0, 4)):
    assert name in tests, f"no {name} in {sorted(tests)}"
    r = tests[name]
    assert (r["n_prompt"], r["n_gen"]) == (np_, ng), f"{name}: n_prompt/n_gen {r['n_prompt']}/{r['n_gen']}"
    assert r["tokens_per_second"] > 0, f"{name}: tokens_per_second {r['tokens_per_second']}"
    assert r["threads"] >= 1
assert "ttft128" in tests and tests["ttft128"]["ttft_ms"] > 0, "no time to first token"
assert "tokenize" in tests and tests["tokenize"]["tokens_per_second"] > 0, "no tokenizer speed"
assert rows[0]["peak_rss_bytes"] > 0 and rows[0]["load_seconds"] > 0
print("ok: " + ", ".join(f"{r['test']} {r['tokens_per_second']:.1f} tok/s" for r in rows))
PY
