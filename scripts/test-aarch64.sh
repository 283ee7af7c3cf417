#!/usr/bin/env bash
# Cross-builds gemma.c for aarch64 Linux and runs the kernel tests under qemu-user on
# emulated CPUs of each NEON level, so the NEON kernels are checked on an x86 host.
#   needs (Debian/Ubuntu): gcc-aarch64-linux-gnu qemu-user
#   usage: scripts/test-aarch64.sh [build-dir]     (default: build-aarch64)
#   env:   JOBS (make -j, default 2), CPUS (default "max cortex-a76 cortex-a53"),
#          TESTS (ctest -R regex, default the kernel, op and reference tests)
# qemu CPUs: max has dotprod + i8mm, cortex-a76 dotprod only, cortex-a53 plain NEON;
# test_kernels/test_ops check every level the emulated CPU reports against the scalar
# reference, so the three CPUs cover scalar, neon, neon-dotprod and neon-i8mm.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-aarch64}
JOBS=${JOBS:-2}
CPUS=${CPUS:-max cortex-a76 cortex-a53}
TESTS=${TESTS:-^test_(kernels|ops|quants|compute|reference)$}

for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null || {
        echo "test-aarch64: $tool not found (apt-get install gcc-aarch64-linux-gnu qemu-user)" >&2
        exit 1
    }
done

start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/aarch64-linux-gnu.cmake" \
    -DGEMMA_SERVER=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$JOBS"

# Quick mode for the slow end-to-end reference test: emulation is ~10-50x slower.
export GEMMA_SKIP_SLOW=1
for cpu in $CPUS; do
    echo "== qemu-aarch64 -cpu $cpu"
    (cd "$BUILD" && QEMU_CPU=$cpu ctest -R "$TESTS" --output-on-failure)
done
echo "test-aarch64: passed on: $CPUS ($(($(date +%s) - start)) s)"
