# Everyday verbs. The real build is CMake (CMakeLists.txt).
#   make        release build into build/
#   make test   install what is missing, build under ASan+UBSan, run every test
#   make bench  release build, then the benchmark (one JSON object per scenario)
#   make demo   local stack + all daemons + one job, output live
#   make clean
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)

.PHONY: all build test bench demo clean bootstrap lint

all: build

bootstrap:
	@./scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHODEI_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: bootstrap lint
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHODEI_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@./scripts/test-deps
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	@./bench/run $(BUILD)

demo: build
	@./scripts/demo $(BUILD)

lint:
	@./scripts/lint

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
