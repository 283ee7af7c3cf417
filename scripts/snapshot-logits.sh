#!/usr/bin/env bash
# Dumps logits (GREF) for every reference model and the default model, on every kernel set this
# machine has, at 1 and 2 threads and batch 3 and 512, and prints one SHA-256 per dump. A
# refactor that must not change outputs runs this before and after and diffs the two lists:
#   scripts/snapshot-logits.sh build/bin/gemma > before.txt   (... change ...)   diff before.txt <(...)
set -euo pipefail
gemma=${1:-build/bin/gemma}
shared=${SHARED:-$(dirname "$0")/../../shared/testdata}
model=${MODEL:-$HOME/.cache/gemma/models/gemma-3-270m-q4_k_m.gguf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
models=()
for f in "$shared"/*.gguf; do [ -f "$f" ] && models+=("$f"); done
[ -f "$model" ] && models+=("$model")
for isa in scalar avx2 avx512 avx512-vnni neon neon-dotprod neon-i8mm; do
    for m in "${models[@]}"; do
        for t in 1 2; do
            for b in 3 512; do
                out="$tmp/out.gref"
                # 12 prompt tokens from the byte range every test vocabulary has.
                if "$gemma" logits -m "$m" --tokens 2,300,301,302,310,320,330,340,350,360,370,380 \
                    --gen 8 -t $t -b $b --isa $isa --out "$out" >/dev/null 2>"$tmp/err"; then
                    echo "$(sha256sum < "$out" | cut -c1-16) $isa $(basename "$m") t$t b$b"
                elif grep -q 'not supported by this CPU' "$tmp/err"; then
                    continue 4  # a kernel set this machine lacks
                else
                    echo "FAILED $isa $(basename "$m") t$t b$b: $(head -c 200 "$tmp/err")"
                fi
            done
        done
    done
done
