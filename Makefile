# Conveyor: build, test, run. `make help` lists the targets.
#
# BUILD names the output folder, so a plain and an ASan build live side by
# side (`make asan` uses build-asan).

BUILD ?= build
SANITIZE ?= 0
PYTHON ?= python3

SERVICES := broker intake scoring routing proposal-generator \
            followup-scheduler account-retention notifier console

CC ?= cc
CXX ?= c++
GMIME_CFLAGS := $(shell pkg-config --cflags gmime-3.0 2>/dev/null)
GMIME_LIBS := $(shell pkg-config --libs gmime-3.0 2>/dev/null)
CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -MMD -MP \
          -Icommon -I$(BUILD)/gen $(GMIME_CFLAGS)
# C++ only where a library has no C interface (libphonenumber); each such
# file exports a plain C header.
CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -O2 -g -MMD -MP -Icommon
# --as-needed: a process links only the libraries it calls (GMime and
# libphonenumber only where mail and phones are parsed).
LDFLAGS += -Wl,--as-needed
LDLIBS := -lzmq -lprotobuf-c -lsqlite3 -lcurl -lmicrohttpd -ljansson \
          -lcyaml $(GMIME_LIBS) -lphonenumber -lstdc++ -lpthread -lm
# FUZZ=1 (with CC=clang, CXX=clang++): everything instrumented for
# libFuzzer and checked by ASan + UBSan; `make fuzz` sets it.
FUZZ ?= 0
ifeq ($(FUZZ),1)
SANITIZE := 1
CFLAGS += -fsanitize=fuzzer-no-link
CXXFLAGS += -fsanitize=fuzzer-no-link
endif
ifeq ($(SANITIZE),1)
CFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
          -fno-sanitize-recover=undefined
CXXFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
          -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

GEN_C := $(BUILD)/gen/conveyor.pb-c.c
GEN_H := $(BUILD)/gen/conveyor.pb-c.h
COMMON_SRC := $(wildcard common/*.c)
COMMON_CXX_SRC := $(wildcard common/*.cc)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o) \
              $(COMMON_CXX_SRC:%.cc=$(BUILD)/obj/%.o) \
              $(BUILD)/obj/gen/conveyor.pb-c.o
LIBCONVEYOR := $(BUILD)/libconveyor.a

SERVICE_BINS := $(SERVICES:%=$(BUILD)/bin/%)
TOOL_BINS := $(BUILD)/bin/conveyor-bench $(BUILD)/bin/conveyorctl
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FAULT_LIBS := $(patsubst tests/e2e/fault/%.c,$(BUILD)/lib/%.so,$(wildcard tests/e2e/fault/*.c))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# service code the fuzz targets drive (parsers that live in a service)
FUZZ_SERVICE_OBJ := $(BUILD)/obj/services/intake/intake_lead.o
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 5

.PHONY: all build deps run test unit e2e asan bench clean help check-deploy \
        fuzz fuzz-build fuzz-prepare

all: build

help:
	@echo "make run    - install what is missing, build, run the conveyor"
	@echo "make test   - install, build, run every test"
	@echo "make asan   - the whole suite under AddressSanitizer + UBSan"
	@echo "make bench  - throughput and latency of the full conveyor"
	@echo "make fuzz   - fuzz every parser (FUZZ_SECONDS each, default 60)"
	@echo "make deps   - install the Debian packages the project needs"
	@echo "make clean  - remove build outputs"

deps:
	@bash deploy/deps.sh

build: $(SERVICE_BINS) $(TOOL_BINS) $(UNIT_BINS) $(FAULT_LIBS)

$(GEN_C) $(GEN_H) &: proto/conveyor.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto proto/conveyor.proto

$(BUILD)/obj/gen/conveyor.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

$(BUILD)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the built-in scoring rules are this file, compiled in (.incbin)
$(BUILD)/obj/common/cv_scoring_rules.o: deploy/scoring-rules.yaml
# the built-in business calendar is this file, compiled in (.incbin)
$(BUILD)/obj/common/cv_calendar.o: deploy/calendar-ru.yaml
# the built-in routing rules are this file, compiled in (.incbin)
$(BUILD)/obj/common/cv_routing_rules.o: deploy/routing-rules.yaml

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(LIBCONVEYOR): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Each service is every .c file in its folder, linked with libconveyor.
define service_rule
$(BUILD)/bin/$(1): $$(patsubst %.c,$(BUILD)/obj/%.o,$$(wildcard services/$(1)/*.c)) $(LIBCONVEYOR)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

$(BUILD)/bin/conveyor-bench: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/bench/*.c)) $(LIBCONVEYOR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/conveyorctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/conveyorctl/*.c)) $(LIBCONVEYOR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test-only LD_PRELOAD libraries that fail writes with ENOSPC or slow
# syncs down on demand; built without sanitizers (they are preloaded into
# any build's processes)
$(BUILD)/lib/%.so: tests/e2e/fault/%.c tests/e2e/fault/fault.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -fPIC -shared -o $@ $< -ldl

# A service's own unit tests (tests/unit/test_<service>_*.c) exercise its
# files: they are linked with them (all but its main, main.c or
# <service>_main.c).
SERVICES_WITH_UNIT_TESTS := notifier intake console
define service_test_rule
$(BUILD)/tests/test_$(1)_%: $(BUILD)/obj/tests/unit/test_$(1)_%.o $$(patsubst %.c,$(BUILD)/obj/%.o,$$(filter-out services/$(1)/main.c services/$(1)/$(1)_main.c,$$(wildcard services/$(1)/*.c))) $(LIBCONVEYOR)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lcmocka
endef
$(foreach s,$(SERVICES_WITH_UNIT_TESTS),$(eval $(call service_test_rule,$(s))))

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBCONVEYOR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(FUZZ_SERVICE_OBJ) $(LIBCONVEYOR)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# The fuzz build: clang, libFuzzer, ASan + UBSan, in its own folder.
fuzz-prepare:
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=$(FUZZ_BUILD) FUZZ=1 \
	    CC=clang CXX=clang++ fuzz-build

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-prepare
	@bash tests/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

run: deps
	@$(MAKE) --no-print-directory -j$$(nproc) build
	@bash deploy/run.sh $(BUILD)

unit: build
	@bash tests/run-unit.sh $(BUILD)

e2e: build
	@$(PYTHON) tests/e2e/run.py --build $(BUILD)

check-deploy:
	@bash tests/check-deploy.sh

test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) build
	@$(MAKE) --no-print-directory fuzz-prepare
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) \
	    bash tests/run-all.sh $(BUILD)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 test

bench: deps
	@$(MAKE) --no-print-directory -j$$(nproc) build
	@bash tools/bench/bench.sh $(BUILD)

clean:
	rm -rf build build-asan build-* 

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
