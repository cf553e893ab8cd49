# Everyday verbs. The real build is CMake (CMakeLists.txt). Each verb first
# installs the Debian packages it needs (scripts/bootstrap SET), no more:
#   make        release build into build/                (build deps only)
#   make test   build under ASan+UBSan, run every test   (+ servers, Node, lint)
#   make bench  release build, then the benchmark        (+ servers, Node, Docker)
#   make chaos  scale-out chaos test, 5,000 jobs, 3 runs  (+ servers, Node)
#   make dev    local stack + all daemons, until Ctrl-C  (+ servers)
#   make images the container images, from Debian packages (+ Docker, mmdebstrap)
#   make demo   local stack + all daemons + one job      (+ servers)
#   make lint   scripts/lint                             (+ clang-format)
#   make fuzz   every libFuzzer harness, 1M runs each     (+ clang, as make test)
#   make clean
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)

.PHONY: all build test bench chaos dev demo clean lint fuzz images

all: build

build:
	@./scripts/bootstrap build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHODEI_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test:
	@./scripts/bootstrap test
	@./scripts/lint
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHODEI_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@./scripts/test-deps
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	@./scripts/bootstrap bench
	@./bench/run $(BUILD)
	@./bench/scale $(BUILD)

chaos:
	@./scripts/bootstrap test
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHODEI_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@./scripts/chaos $(TEST_BUILD) 3 5000

dev: build
	@./scripts/bootstrap run
	@./scripts/hodei-dev --bin $(BUILD)/bin $(DEV_ARGS)

images: build
	@./scripts/bootstrap docker
	@./scripts/images $(BUILD)

demo: build
	@./scripts/bootstrap run
	@./scripts/demo $(BUILD)

fuzz:
	@./scripts/bootstrap test
	@./scripts/fuzz $(FUZZ_ARGS)

lint:
	@./scripts/bootstrap lint
	@./scripts/lint

clean:
	rm -rf $(BUILD) $(TEST_BUILD) build-fuzz
