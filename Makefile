# Short commands over the CMake build. `make` builds build/bin/gemma; `make test` runs the suite.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
MODEL      ?= $(HOME)/.cache/gemma/models/gemma-3-270m-q4_k_m.gguf
FUZZ_SECONDS ?= 60

.PHONY: all build test sanitize test-sanitize test-aarch64 fuzz bench model memcheck run serve clean format

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The whole suite: unit tests, reference vectors, the default model end to end.
test: build model
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize test-sanitize: model
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGEMMA_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -LE slow

# The NEON kernels, cross-built for aarch64 and tested under qemu-user on emulated CPUs of
# each level (needs gcc-aarch64-linux-gnu and qemu-user).
test-aarch64:
	JOBS=$(JOBS) bash scripts/test-aarch64.sh build-aarch64

fuzz:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGEMMA_FUZZ=ON -DGEMMA_TESTS=OFF >/dev/null
	cmake --build build-fuzz -j $(JOBS)
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

bench: build model
	$(BUILD)/bin/gemma bench -m $(MODEL)

model:
	bash scripts/fetch-model.sh

# The OpenAI-compatible server on the default model (http://127.0.0.1:8080/v1).
serve: build model
	$(BUILD)/bin/gemma serve -m $(MODEL)

# Runs the default model on a prompt: the first thing a new user does.
run: build model
	$(BUILD)/bin/gemma run -m $(MODEL) -p "The Eiffel Tower is located in the city of" -n 32 --temp 0

# The suite under valgrind (slow parts trimmed; CLI scripts would only check bash).
memcheck:
	cmake -S . -B build-memcheck -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-memcheck -j $(JOBS)
	cd build-memcheck && GEMMA_SKIP_SLOW=1 ctest --output-on-failure -T memcheck -E 'cli_|bench_kernels'

format:
	clang-format -i include/*.h $$(find src tools tests fuzz bench -name '*.[ch]')

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-memcheck
