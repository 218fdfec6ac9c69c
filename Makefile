# zl-overlay — root build. `make` builds build/bin/*, `make test` runs every test, `make bench` the benchmarks.
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
STD      := -std=gnu11 -D_GNU_SOURCE -fno-strict-aliasing
INC      := -Isrc
LIBS     := -lsodium -lcrypto -lb2 -lmnl -ljson-c
BUILD    ?= build

CORE_SRC := $(wildcard src/wg/core/*.c)
IO_SRC   := $(wildcard src/wg/io/*.c)
OVERLAY_SRC := $(wildcard src/overlay/*.c)
DNS_SRC  := $(wildcard src/dns/*.c)
LIB_SRC  := $(CORE_SRC) $(IO_SRC) $(OVERLAY_SRC) $(DNS_SRC)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
CLI_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/cli/*.c))
OVERLAYD_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/overlayd/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/lib/libzlwg.a
BINS     := $(BUILD)/bin/zl-wg $(BUILD)/bin/zl-overlay $(BUILD)/bin/zl-overlayd
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/test/%)

.PHONY: all test unit unit-asan unit-tsan e2e bench demo demo-wg clean deps fuzz
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(INC) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/zl-wg: $(BUILD)/obj/src/cmd/zl-wg/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) -lpthread

# zl-overlay: the CLI (src/cli) on top of the library; its unit tests (test_cli_*) link the CLI too.
$(BUILD)/bin/zl-overlay: $(BUILD)/obj/src/cmd/zl-overlay/main.o $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# zl-overlayd: the daemon (src/overlayd) embedding the WireGuard engine.
$(BUILD)/bin/zl-overlayd: $(BUILD)/obj/src/cmd/zl-overlayd/main.o $(OVERLAYD_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) -lpthread

$(BUILD)/test/test_overlayd_%: $(BUILD)/obj/tests/unit/test_overlayd_%.o $(OVERLAYD_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) -lpthread

$(BUILD)/test/test_cli_%: $(BUILD)/obj/tests/unit/test_cli_%.o $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) -lpthread

$(BUILD)/test/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) -lpthread

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Installs the Debian packages the build and the tests need (only when root and something is missing).
deps:
	@scripts/install-deps.sh

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

# The same unit tests, built separately under AddressSanitizer and UndefinedBehaviorSanitizer.
unit-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" unit

# libFuzzer harnesses (every parser), each run for FUZZ_SECONDS.
FUZZ_SECONDS ?= 15
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" build/fuzz/lib/libzlwg.a
	@mkdir -p build/fuzz/bin
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=gnu11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -Isrc $$f build/fuzz/lib/libzlwg.a \
	    $(LIBS) -o build/fuzz/bin/$$n || exit 1; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  build/fuzz/bin/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=2048 -print_final_stats=0 2>build/fuzz/$$n.log \
	    || { tail -40 build/fuzz/$$n.log; exit 1; }; \
	done

# Overlay scenarios to leave out of make test (none now; e.g. OVERLAY_E2E_SKIP="mesh10-v6" for a quick run).
OVERLAY_E2E_SKIP ?=

# The whole suite with the offloads (TUN vnet/TSO/GRO, UDP GSO/GRO) on, then the data-path scenarios
# again with them forced off, so both paths stay tested.
# The tests whose threads share state (crypto worker pool, per-thread AEAD contexts) under TSan.
TSAN_TESTS := test_workers test_crypto
unit-tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" $(TSAN_TESTS:%=build/tsan/test/%)
	@TSAN_OPTIONS=halt_on_error=1 scripts/run-unit.sh $(TSAN_TESTS:%=build/tsan/test/%)

e2e: all
	@tests/e2e/run-all.sh
	@echo "== e2e again with ZL_WG_OFFLOAD=0 (plain TUN and UDP paths)"
	@ZL_WG_OFFLOAD=0 E2E_ONLY="basic tcp counters roaming restart" tests/e2e/run-all.sh
	@echo "== e2e of the overlay (zl-overlayd + zl-overlay)"
	@E2E_SKIP="$(OVERLAY_E2E_SKIP)" tests/e2e-overlay/run-all.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory unit-tsan
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory e2e

# Harnesses that drive the core in memory (bench/run.sh runs them; bench/aead_speed.c is standalone).
BENCH_BIN := $(BUILD)/bench/handshake_bench $(BUILD)/bench/allowedips_bench $(BUILD)/bench/dns_server_bench
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# The DNS benchmark's harness (bench/dns.sh) serves its zone with the daemon's server thread.
DNS_BENCH_OBJ := $(patsubst %,$(BUILD)/obj/src/overlayd/%.o,dns_server net log)
$(BUILD)/bench/dns_server_bench: $(BUILD)/obj/bench/dns_server_bench.o $(DNS_BENCH_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) -lpthread

bench: deps all $(BENCH_BIN)
	@bench/run.sh

demo: deps all
	@scripts/demo-overlay.sh

# The two-host zl-wg tunnel demo (the first milestone's demo).
demo-wg: deps all
	@scripts/demo.sh

clean:
	rm -rf build
