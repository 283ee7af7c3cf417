#!/usr/bin/env bash
# Side-by-side speed of gemma and llama.cpp's llama-bench on the same GGUF file.
#
#   bench/compare.sh MODEL [THREADS...]        (default threads: 1 2)
#
# For each thread count it runs pp512 and tg128 in both engines, alternating
# (ours, theirs, ours, theirs) so that drift in machine load hits both alike, then prints
# our tok/s, theirs, and the ratio. Environment:
#   GEMMA_BIN    our CLI (default: build/bin/gemma next to this script)
#   LLAMA_BENCH  llama-bench (default: /work/peer/llama.cpp/build/bin/llama-bench)
#   REPS         repetitions per run (default 5)      ROUNDS  alternations (default 2)
#   PP / TG      prompt and generation lengths (default 512 / 128)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    [[ $# -lt 1 ]] && exit 2 || exit 0
fi
model="$1"
shift
threads=("$@")
[[ ${#threads[@]} -eq 0 ]] && threads=(1 2)

gemma="${GEMMA_BIN:-$here/../build/bin/gemma}"
llama="${LLAMA_BENCH:-/work/peer/llama.cpp/build/bin/llama-bench}"
reps="${REPS:-5}"
rounds="${ROUNDS:-2}"
pp="${PP:-512}"
tg="${TG:-128}"

[[ -r "$model" ]] || { echo "compare.sh: cannot read model '$model'" >&2; exit 2; }
[[ -x "$gemma" ]] || { echo "compare.sh: no gemma binary at '$gemma'; run 'make' or set GEMMA_BIN" >&2; exit 2; }
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed to read the results" >&2; exit 2; }
have_llama=1
if [[ ! -x "$llama" ]]; then
    echo "compare.sh: llama-bench not found at '$llama' (set LLAMA_BENCH); showing gemma only" >&2
    have_llama=0
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for t in "${threads[@]}"; do
    [[ "$t" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: thread count '$t' is not a positive integer" >&2; exit 2; }
    for ((r = 1; r <= rounds; r++)); do
        echo "threads $t, round $r/$rounds: gemma" >&2
        "$gemma" bench -m "$model" -p "$pp" -n "$tg" -t "$t" -r "$reps" --json >"$out/ours-$t-$r.json"
        if ((have_llama)); then
            echo "threads $t, round $r/$rounds: llama-bench" >&2
            "$llama" -m "$model" -p "$pp" -n "$tg" -t "$t" -r "$reps" -o json \
                >"$out/theirs-$t-$r.json" 2>"$out/theirs-$t-$r.log" || {
                echo "compare.sh: llama-bench failed; its log:" >&2
                cat "$out/theirs-$t-$r.log" >&2
                exit 1
            }
        fi
    done
done

python3 - "$out" "$pp" "$tg" "${threads[@]}" <<'EOF'
import glob, json, math, os, sys

out, pp, tg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
threads = [int(t) for t in sys.argv[4:]]

def load(who, t):
    """All per-repetition tok/s samples of every round, keyed by test name."""
    samples = {}
    for path in sorted(glob.glob(os.path.join(out, f"{who}-{t}-*.json"))):
        with open(path) as f:
            rows = json.load(f)
        for row in rows:
            np_, ng = int(row.get("n_prompt", 0)), int(row.get("n_gen", 0))
            if np_ > 0 and ng == 0:
                name = f"pp{np_}"
            elif ng > 0 and np_ == 0:
                name = f"tg{ng}"
            else:
                continue  # ttft, tokenizer, mixed tests
            s = row.get("samples_ts") or [row.get("avg_ts", row.get("tokens_per_second", 0.0))]
            samples.setdefault(name, []).extend(float(x) for x in s)
    return samples

def stats(v):
    if not v:
        return None
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd

model_type = ""
first = sorted(glob.glob(os.path.join(out, "ours-*.json")))
if first:
    model_type = json.load(open(first[0]))[0].get("model_type", "")
print(f"\nmodel: {model_type}\n")
hdr = f"| {'test':>7} | {'threads':>7} | {'gemma t/s':>17} | {'llama.cpp t/s':>17} | {'ratio':>6} |"
print(hdr)
print("| ------: | ------: | ----------------: | ----------------: | -----: |")
for t in threads:
    ours, theirs = load("ours", t), load("theirs", t)
    for name in (f"pp{pp}", f"tg{tg}"):
        a, b = stats(ours.get(name, [])), stats(theirs.get(name, []))
        fa = f"{a[0]:.2f} ± {a[1]:.2f}" if a else "-"
        fb = f"{b[0]:.2f} ± {b[1]:.2f}" if b else "-"
        ratio = f"{a[0] / b[0]:.2f}" if a and b and b[0] > 0 else "-"
        print(f"| {name:>7} | {t:>7} | {fa:>17} | {fb:>17} | {ratio:>6} |")
print("\nratio = gemma / llama.cpp (above 1: gemma is faster)")
EOF
