# SPDX-License-Identifier: Apache-2.0
#
# Cloister: one non-recursive GNU make build. Objects go to $(BUILD) (build/ by default,
# build/san for the sanitizer run, build/fuzz for libFuzzer targets).
#
#   make            libcloister.a and every binary
#   make test       install missing Debian packages, build, run unit + integration tests
#   make asan       the same suites under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check      clang-format, cppcheck and clang-tidy
#   make fuzz       every libFuzzer target for FUZZ_SECONDS each (default 60)
#   make fuzz-campaign  every target for FUZZ_MINUTES (default 30), corpora minimized (docs/fuzzing.md)
#   make bench      benchmarks (ratios against a baseline measured in the same run)
#   make mini       a local cluster, verified
#   make image      the node image (build/image/image.raw: UKI, dm-verity root; needs root;
#                   MEASUREMENTS_VERSION=N numbers its signed measurements file)
#   make test-e2e   the image booted as QEMU VMs: a 2-node cluster, reboot, a modified image
#   make install    binaries, man pages and bash completion to $(DESTDIR)$(PREFIX)
#   make cli-reference  docs/cli-reference.md from the binaries' --help (man, completion: the same)

SHELL := /bin/bash
BUILD ?= build
.DEFAULT_GOAL := all
PREFIX ?= /usr/local
CC ?= gcc
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60
V ?= 0

ifeq ($(V),0)
Q := @
else
Q :=
endif

PKGS := openssl tss2-esys tss2-mu tss2-rc tss2-tctildr libcryptsetup libcurl jansson \
        libevent_pthreads \
        libevent libevent_openssl libseccomp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARNINGS := -Wall -Wextra -Werror -Wformat=2 -Wformat-security -Wshadow -Wvla -Wundef \
            -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wimplicit-fallthrough \
            -Wdate-time -Wnull-dereference -Wno-missing-field-initializers -Wno-unused-parameter
CFLAGS_COMMON := -std=gnu17 -D_GNU_SOURCE -g $(WARNINGS) -Ilib/include $(PKG_CFLAGS) -MMD -MP \
                 -fno-strict-aliasing -fstack-protector-strong -fstack-clash-protection \
                 -fcf-protection -fPIE
LDFLAGS_COMMON := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed

ifeq ($(SAN),1)
CFLAGS_MODE := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS_MODE := -fsanitize=address,undefined
else
CFLAGS_MODE := -O2 -D_FORTIFY_SOURCE=2
LDFLAGS_MODE :=
endif

ALL_CFLAGS = $(CFLAGS_COMMON) $(CFLAGS_MODE) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_COMMON) $(LDFLAGS_MODE) $(LDFLAGS)

# --- libcloister -----------------------------------------------------------------------------
LIB_SRCS := $(sort $(wildcard lib/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIBCLOISTER := $(BUILD)/libcloister.a

# --- binaries: folder:binary; a component is built once it has a main.c -----------------------
COMPONENTS := cli:cloister measured-boot:cloister-measure disk-mapper:cloister-disk-mapper \
              bootstrapper:cloister-bootstrapper join-service:cloister-join-service
define component_rules
$(1)_SRCS := $$(wildcard $(1)/*.c)
$(1)_OBJS := $$($(1)_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/bin/$(2): $$($(1)_OBJS) $(LIBCLOISTER)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $$@ $$($(1)_OBJS) $(LIBCLOISTER) $(PKG_LIBS)
BINS += $$(if $$(wildcard $(1)/main.c),$(BUILD)/bin/$(2))
endef
$(foreach c,$(COMPONENTS),$(eval $(call component_rules,$(word 1,$(subst :, ,$(c))),$(word 2,$(subst :, ,$(c))))))

# --- unit tests: tests/unit/test-<module>.c -> $(BUILD)/tests/test-<module> -------------------
UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TEST_HELPERS := $(sort $(wildcard tests/helpers/*.c))
TEST_HELPER_OBJS := $(TEST_HELPERS:%.c=$(BUILD)/obj/%.o)

# Objects are never "intermediate": keep them so rebuilds are incremental.
.SECONDARY:
NPROC := $(shell nproc 2>/dev/null || echo 2)

.PHONY: all lib test test-unit test-integration test-run check format asan fuzz fuzz-smoke fuzz-campaign bench \
        mini mini-down install clean deps build-tests test-run-san image cloud-images test-e2e

all: $(LIBCLOISTER) $(BINS)
lib: $(LIBCLOISTER)

# What 'cloister version' prints beyond the release: the commit and its date (never the build's
# clock: builds stay reproducible) and the tpm2-tss the binaries were built against. Rewritten only
# when it changes, so that a rebuild recompiles cli/main.c alone.
VERSION_H := $(BUILD)/gen/cloister-version.h
.PHONY: FORCE
$(VERSION_H): FORCE
	@mkdir -p $(@D)
	@c=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	 d=$$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null \
	      || echo unknown); \
	 t=$$(pkg-config --modversion tss2-esys 2>/dev/null || echo unknown); \
	 printf '#define CLOISTER_COMMIT "%s"\n#define CLOISTER_COMMIT_DATE "%s"\n#define CLOISTER_TSS2_VERSION "%s"\n' \
	        "$$c" "$$d" "$$t" > $@.tmp; \
	 if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/cli/main.o: $(VERSION_H)
$(BUILD)/obj/cli/main.o: CFLAGS += -I$(BUILD)/gen

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -Itests -Wno-unused-parameter -c -o $@ $<

$(LIBCLOISTER): $(LIB_OBJS)
	@mkdir -p $(@D)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_HELPER_OBJS) $(LIBCLOISTER)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_HELPER_OBJS) $(LIBCLOISTER) $(PKG_LIBS) $(CMOCKA_LIBS)

# The disk mapper with fault points compiled in (CLOISTER_FAULT_INJECTION): the crash-safety
# tests kill it between header writes. Only tests use it; it is never installed.
FAULT_BIN := $(BUILD)/tests/cloister-disk-mapper-fault
$(BUILD)/obj-fault/lib/luks/luks.o: lib/luks/luks.c
	@mkdir -p $(@D)
	@echo "  CC      $< (fault injection)"
	$(Q)$(CC) $(ALL_CFLAGS) -DCLOISTER_FAULT_INJECTION -c -o $@ $<
$(FAULT_BIN): $(disk-mapper_OBJS) $(BUILD)/obj-fault/lib/luks/luks.o $(LIBCLOISTER)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(disk-mapper_OBJS) $(BUILD)/obj-fault/lib/luks/luks.o \
	        $(LIBCLOISTER) $(PKG_LIBS)

# The join service with fault points (CLOISTER_FAULT_INJECTION): the crash tests kill it with
# SIGKILL at each step of a join (CLOISTER_FAULT=STEP), or alters one member of what it seals to
# a node (CLOISTER_FAULT=tamper:KEY=VALUE, tests/integration/test_join_tampered.py). Only tests
# use it; never installed.
# main.c's hook: CLOISTER_FAKE_NETWORK=PROG replaces the network process with PROG, which
# speaks to the monitor as a compromised one would (tests/integration/test_join_privsep.py).
JOIN_FAULT_BIN := $(BUILD)/tests/cloister-join-service-fault
$(BUILD)/obj-fault/join-service/%.o: join-service/%.c
	@mkdir -p $(@D)
	@echo "  CC      $< (fault injection)"
	$(Q)$(CC) $(ALL_CFLAGS) -DCLOISTER_FAULT_INJECTION -c -o $@ $<
$(JOIN_FAULT_BIN): $(filter-out %/join-service-ticket.o %/join-service-refusals.o \
                               %/join-service-monitor.o %/main.o \
                               %/join-service-reattest.o,$(join-service_OBJS)) \
                   $(BUILD)/obj-fault/join-service/join-service-ticket.o \
                   $(BUILD)/obj-fault/join-service/join-service-reattest.o \
                   $(BUILD)/obj-fault/join-service/join-service-refusals.o \
                   $(BUILD)/obj-fault/join-service/join-service-monitor.o \
                   $(BUILD)/obj-fault/join-service/main.o $(LIBCLOISTER)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Test tools: misbehaving clients and the like (tests/tools/<name>.c -> $(BUILD)/tests/<name>).
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)
$(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o $(LIBCLOISTER)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBCLOISTER) $(PKG_LIBS)

build-tests: all $(UNIT_BINS) $(FAULT_BIN) $(JOIN_FAULT_BIN) $(TOOL_BINS)

# --- the two commands ----------------------------------------------------------------------------
deps:
	$(Q)./scripts/install-deps

# test installs what is missing first, then re-reads this Makefile (pkg-config needs the packages).
test: deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) build-tests $(FUZZ_BINS)
	$(Q)$(MAKE) --no-print-directory test-run

test-run: build-tests
	$(Q)rm -rf $(BUILD)/test-results && mkdir -p $(BUILD)/test-results
	$(Q)status=0; \
	tests/run-unit $(BUILD) || status=1; \
	$(MAKE) --no-print-directory test-integration || status=1; \
	$(MAKE) --no-print-directory fuzz-smoke || status=1; \
	$(MAKE) --no-print-directory test-e2e || status=1; \
	$(PYTHON) tests/summarize.py $(BUILD)/test-results || status=1; \
	exit $$status

test-unit: build-tests
	$(Q)mkdir -p $(BUILD)/test-results
	$(Q)tests/run-unit $(BUILD)

test-integration: all
	$(Q)mkdir -p $(BUILD)/test-results
	$(Q)CLOISTER_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	        --junitxml=$(BUILD)/test-results/integration.xml tests/integration

asan:
	$(Q)./scripts/install-deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) SAN=1 BUILD=build/san build-tests
	$(Q)$(MAKE) --no-print-directory SAN=1 BUILD=build/san test-run-san

test-run-san: build-tests
	$(Q)rm -rf $(BUILD)/test-results && mkdir -p $(BUILD)/test-results
	$(Q)status=0; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	        tests/run-unit $(BUILD) || status=1; \
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	        $(MAKE) --no-print-directory test-integration || status=1; \
	$(PYTHON) tests/summarize.py $(BUILD)/test-results || status=1; \
	exit $$status

# The node image and the tests that boot it (tests/e2e: QEMU VMs with OVMF and swtpm). The image
# carries the optimised binaries of $(BUILD) (never the sanitizer build's).
IMAGE_DIR := $(BUILD)/image
# The signed measurements file's measurementsVersion (docs/measured-boot.md); empty: the build's
# SOURCE_DATE_EPOCH (the last commit's time).
MEASUREMENTS_VERSION ?=
# The image's kind (image/README.md, "Kubernetes"): auto, cloud (the pinned Kubernetes, fetched
# and verified, or fail) or test (the kubeadm double); KUBERNETES_MIRROR: fetch from there.
IMAGE_KIND ?= auto
KUBERNETES_MIRROR ?=
image: all
	$(Q)$(PYTHON) image/build --build $(BUILD) --output $(IMAGE_DIR) --kind $(IMAGE_KIND) \
	        $(if $(MEASUREMENTS_VERSION),--measurements-version $(MEASUREMENTS_VERSION)) \
	        $(if $(KUBERNETES_MIRROR),--kubernetes-mirror $(KUBERNETES_MIRROR))

# E2E_BUSY=N: N busy loops compete for the CPUs while the VMs run (a slow machine must make the
# suite slower, not fail: its waits follow the VMs' progress).
E2E_BUSY ?= 0
# The image in the formats the clouds import (GCP tar.gz, Azure fixed VHD, AWS raw: docs/cloud.md).
cloud-images: image
	$(Q)$(PYTHON) image/cloud-images --input $(IMAGE_DIR)/image.raw --output $(IMAGE_DIR)

test-e2e: all
	$(Q)mkdir -p $(BUILD)/test-results
	$(Q)$(MAKE) --no-print-directory image
	$(Q)CLOISTER_BUILD=$(abspath $(BUILD)) CLOISTER_E2E_BUSY=$(E2E_BUSY) $(PYTHON) -m pytest -q \
	        -p no:cacheprovider --junitxml=$(BUILD)/test-results/e2e.xml tests/e2e

# Mutation testing of the security checks (tests/mutation/mutants.txt, docs/testing.md): each
# check is disabled in turn in a scratch copy of the tree, where some test must then fail. Slow;
# MUTANTS=id1,id2 runs a subset; MUTATION_ARGS=--check only proves each entry applies and compiles.
.PHONY: test-mutation
test-mutation:
	$(Q)$(PYTHON) tests/mutation/run --jobs $(NPROC) --python $(PYTHON) \
	        --log-dir $(BUILD)/mutation $(MUTATION_ARGS)

# --- static checks -------------------------------------------------------------------------------
C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

check:
	@echo "  FORMAT  (clang-format --dry-run)"
	$(Q)clang-format --dry-run --Werror $(C_FILES)
	@echo "  CPPCHECK"
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	        --std=c11 -Ilib/include --suppress=missingIncludeSystem \
	        --suppress=memleak --suppress=resourceLeak --suppress=unknownMacro $(filter %.c,$(C_FILES))
	@echo "  TIDY"
	$(Q)clang-tidy --quiet $(filter lib/% cli/% measured-boot/%,$(filter %.c,$(C_FILES))) -- \
	        $(CFLAGS_COMMON) $(CMOCKA_CFLAGS) -Itests 2>&1 | grep -v 'warnings generated' ; \
	        test $${PIPESTATUS[0]} -eq 0

format:
	$(Q)clang-format -i $(C_FILES)

# --- fuzzing: tests/fuzz/fuzz-<parser>.c, built with clang + libFuzzer from the real sources ----
FUZZ_BUILD ?= build/fuzz
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_CFLAGS := -std=gnu17 -D_GNU_SOURCE -g -O1 -Ilib/include $(PKG_CFLAGS) -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC-FUZZ $<"
	$(Q)clang $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJS)
	@echo "  LD-FUZZ $@"
	$(Q)clang -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB_OBJS) $(PKG_LIBS)

fuzz: $(FUZZ_BINS)
	$(Q)tests/run-fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_BINS)

# The long runs docs/fuzzing.md records: FUZZ_MINUTES per target (default 30), each corpus
# minimized and written back to tests/fuzz/corpus/ (commit it), one table row per target.
FUZZ_MINUTES ?= 30
fuzz-campaign: $(FUZZ_BINS)
	$(Q)tests/fuzz/campaign --build $(FUZZ_BUILD) --minutes $(FUZZ_MINUTES) --update-corpus \
	        $(FUZZ_TARGETS)

# A short run of every target with its seed corpus, part of make test.
fuzz-smoke: $(FUZZ_BINS)
	$(Q)mkdir -p $(BUILD)/test-results
	$(Q)tests/run-fuzz $(FUZZ_BUILD) 10 $(FUZZ_BINS) > $(BUILD)/test-results/fuzz.log 2>&1 \
	        && echo "fuzz-smoke: $(words $(FUZZ_BINS)) targets ran clean" \
	        || { tail -50 $(BUILD)/test-results/fuzz.log; exit 1; }

# --- benchmarks, local cluster, install ------------------------------------------------------
# tests/bench/bench-<name>.c: programs that print "name baseline candidate ratio target PASS|FAIL"
# lines (ratios against a baseline measured in the same run) and write $(BUILD)/bench/<name>.json.
BENCH_SRCS := $(sort $(wildcard tests/bench/bench-*.c))
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)
BENCH_PAIRS ?= 200

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(TEST_HELPER_OBJS) $(LIBCLOISTER)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_HELPER_OBJS) $(LIBCLOISTER) $(PKG_LIBS) $(CMOCKA_LIBS)

bench: deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all $(BENCH_BINS)
	$(Q)status=0; for b in $(BENCH_BINS); do \
	        echo "== $$(basename $$b)"; \
	        $$b $(BENCH_PAIRS) $(BUILD)/bench/$$(basename $$b | sed 's/^bench-//').json || status=1; \
	done; \
	echo "== disk (QEMU guest)"; \
	$(PYTHON) tests/bench/bench_disk_vm.py $(BUILD) || status=1; \
	echo "== join (200 nodes at once, each with its own swtpm and source address)"; \
	{ $(MAKE) --no-print-directory $(BUILD)/tests/join-probe $(BUILD)/tests/atls-hold && \
	        $(PYTHON) tests/bench/bench_join.py $(BUILD); } || status=1; \
	echo "== re-attestation (100 members, each with its own swtpm, every 60 s)"; \
	$(PYTHON) tests/bench/bench_reattest.py $(BUILD) || status=1; \
	echo "== join with the membership in etcd vs local files (docs/membership.md)"; \
	$(PYTHON) tests/bench/bench_join_etcd.py $(BUILD) || status=1; \
	echo "== join under attack (50 joins; 600 slow loris, 300 large bodies, 100 init guesses)"; \
	$(PYTHON) tests/bench/bench_join_attack.py $(BUILD) || status=1; \
	echo "== VM boot to joined (node image, QEMU) vs the image with Cloister's units masked"; \
	{ $(MAKE) --no-print-directory image && \
	        $(PYTHON) tests/bench/bench_vm_boot.py $(BUILD); } || status=1; \
	echo "== TCP between two VMs through the WireGuard mesh vs without it (informational: TCG)"; \
	$(PYTHON) tests/bench/bench_mesh_vm.py $(BUILD) || status=1; \
	exit $$status

# A local cluster: QEMU VMs booted from the node image (2 nodes) wherever they can boot, else
# nodes in network namespaces with a simulated boot (scripts/mini says which, and why).
# `make mini-down` removes it.
# Its workspace (cloister.json, cloister-state.json, the secrets, the nodes): MINI_WORKSPACE;
# 'cloister -C $(MINI_WORKSPACE) mini exec -- cloister status' reaches it.
MINI_WORKSPACE ?= $(BUILD)/mini-workspace
mini: deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all
	$(Q)$(MAKE) --no-print-directory image || \
	        echo "mini: the node image could not be built (see above): VMs cannot boot"
	$(Q)mkdir -p $(MINI_WORKSPACE)
	$(Q)BUILD=$(BUILD) $(BUILD)/bin/cloister -C $(MINI_WORKSPACE) mini up

mini-down:
	$(Q)if [ -d $(MINI_WORKSPACE) ]; then \
	        BUILD=$(BUILD) $(BUILD)/bin/cloister -C $(MINI_WORKSPACE) mini down; fi

# Generated from the binaries' --help by scripts/gen-cli-reference: the CLI reference (committed;
# tests/integration/test_cli_reference.py fails when it drifts), man pages, bash completion.
.PHONY: cli-reference man completion
cli-reference: all
	$(Q)scripts/gen-cli-reference --build $(BUILD) --markdown docs/cli-reference.md
man: $(BUILD)/man/man1/cloister.1
$(BUILD)/man/man1/cloister.1: $(BINS) scripts/gen-cli-reference
	$(Q)rm -rf $(BUILD)/man && scripts/gen-cli-reference --build $(BUILD) --man $(BUILD)/man
completion: $(BUILD)/completion/cloister
$(BUILD)/completion/cloister: $(BUILD)/bin/cloister scripts/gen-cli-reference
	$(Q)scripts/gen-cli-reference --build $(BUILD) --completion $@

# PREFIX/lib/cloister holds what 'cloister mini' runs: its scripts, the VM harness and the kubeadm
# test double (the local cluster's nodes have no Kubernetes binaries).
install: all man completion
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/cloister/vm
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man1 $(BUILD)/man/man1/*.1
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man8 $(BUILD)/man/man8/*.8
	install -D -m 0644 $(BUILD)/completion/cloister \
	        $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cloister
	$(if $(BINS),install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/)
	install -m 0755 scripts/mini scripts/mini-vm scripts/mini-boot-log \
	        $(DESTDIR)$(PREFIX)/lib/cloister/
	install -m 0755 tests/doubles/kubeadm $(DESTDIR)$(PREFIX)/lib/cloister/kubeadm-double
	install -m 0644 tests/vm/vmcluster.py tests/vm/vmharness.py $(DESTDIR)$(PREFIX)/lib/cloister/vm/
	# the Terraform modules cloister create copies (found at ../share/cloister/terraform)
	for f in $$(cd terraform && find gcp azure aws -name '*.tf'); do \
	        install -D -m 0644 terraform/$$f $(DESTDIR)$(PREFIX)/share/cloister/terraform/$$f; done

clean:
	rm -rf build

-include $(shell find $(BUILD) $(FUZZ_BUILD) -path '*/image/work' -prune -o -name '*.d' -type f -print 2>/dev/null)
