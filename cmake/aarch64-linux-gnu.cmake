# Cross-compiling for 64-bit ARM Linux from an x86-64 Debian/Ubuntu host
# (apt: gcc-aarch64-linux-gnu qemu-user). Tests run under qemu-aarch64 through the
# emulator below, so `ctest` works unchanged in the cross build directory.
#   cmake -S . -B build-neon -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DGEMMA_SERVER=OFF
# QEMU_CPU picks the emulated CPU (max: dotprod + i8mm; cortex-a76: dotprod; ...).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(GEMMA_AARCH64_PREFIX aarch64-linux-gnu CACHE STRING "Cross tool prefix")
set(CMAKE_C_COMPILER ${GEMMA_AARCH64_PREFIX}-gcc)
set(GEMMA_AARCH64_SYSROOT /usr/${GEMMA_AARCH64_PREFIX} CACHE PATH "Target libraries for qemu -L")

# Look for programs on the host, for libraries and headers only in the target tree, so
# the host's libmicrohttpd/cJSON are never picked up for an ARM binary.
set(CMAKE_FIND_ROOT_PATH ${GEMMA_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;${GEMMA_AARCH64_SYSROOT})
