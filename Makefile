# hutch build. Each lib/<module>/module.mk and src/<program>/module.mk declares its own sources,
# so parallel work on different modules never edits this file.
#
#   make            release build in build/
#   make SAN=1      ASan+UBSan build in build-san/ (the integration tests also run under it)
#   make fuzz       libFuzzer targets in build-fuzz/ (clang)
#   make check      unit tests; make format-check checks .clang-format

SAN ?= 0
FUZZ ?= 0
ifeq ($(FUZZ),1)
  B ?= build-fuzz
  CC := clang
  SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
else ifeq ($(SAN),1)
  B ?= build-san
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
  B ?= build
  SANFLAGS :=
endif

CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
	-Wvla -Wimplicit-fallthrough -Wno-unused-parameter -Wno-format-nonliteral
HARDEN := -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE
ifneq ($(SAN),0)
  HARDEN := -fstack-protector-strong -fPIE
endif
ifeq ($(FUZZ),1)
  HARDEN := -fPIE
  WARN := $(filter-out -Wimplicit-fallthrough,$(WARN))
endif
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) $(HARDEN) $(SANFLAGS) -D_GNU_SOURCE -Ilib -MMD -MP
LDFLAGS_PIE := -pie -Wl,-z,relro,-z,now
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
ALL_CFLAGS += -DHUTCH_VERSION=\"$(VERSION)\"

libs :=
progs :=
unit_tests :=
fuzzers :=
include $(sort $(wildcard lib/*/module.mk))
include $(sort $(wildcard src/*/module.mk))
include $(wildcard tests/unit/module.mk)
include $(wildcard tests/fuzz/module.mk)

lib_archive = $(B)/lib/libhutch_$(1).a
objs_of = $(patsubst %.c,$(B)/%.o,$(1))

all: $(foreach p,$(progs),$(B)/bin/$(p))

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

define lib_rule
$(call lib_archive,$(1)): $(call objs_of,$($(1)_srcs))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(libs),$(eval $(call lib_rule,$(l))))

define prog_rule
$(B)/bin/$(1): $(call objs_of,$($(1)_srcs)) $(foreach l,$($(1)_libs),$(call lib_archive,$(l)))
	@mkdir -p $$(dir $$@)
	$$(CC) $(SANFLAGS) $$(if $$($(1)_static),-static-pie,$(LDFLAGS_PIE)) -o $$@ $$^ $($(1)_ldlibs) \
		$(foreach l,$($(1)_libs),$(if $($(1)_static),$(or $($(l)_ldlibs_static),$($(l)_ldlibs)),$($(l)_ldlibs)))
endef
$(foreach p,$(progs),$(eval $(call prog_rule,$(p))))

define unit_rule
$(B)/tests/unit/$(1): $(call objs_of,tests/unit/$(1).c) $(foreach l,$(unit_libs),$(call lib_archive,$(l)))
	@mkdir -p $$(dir $$@)
	$$(CC) $(SANFLAGS) $(LDFLAGS_PIE) -o $$@ $$^ $(unit_ldlibs) $(foreach l,$(libs),$($(l)_ldlibs))
endef
$(foreach t,$(unit_tests),$(eval $(call unit_rule,$(t))))

define fuzz_rule
$(B)/fuzz/$(1): $(call objs_of,tests/fuzz/$(1).c) $(foreach l,$(unit_libs),$(call lib_archive,$(l)))
	@mkdir -p $$(dir $$@)
	$$(CC) -fsanitize=fuzzer,address,undefined -o $$@ $$^ $(unit_ldlibs) $(foreach l,$(libs),$($(l)_ldlibs))
endef
$(foreach t,$(fuzzers),$(eval $(call fuzz_rule,$(t))))

units: $(foreach t,$(unit_tests),$(B)/tests/unit/$(t))
check: units
	@tests/run-unit.sh $(B)

fuzz:
	$(MAKE) FUZZ=1 $(foreach t,$(fuzzers),build-fuzz/fuzz/$(t))

format-check:
	@scripts/format-check.sh

clean:
	rm -rf build build-san build-fuzz

.PHONY: all units check fuzz format-check clean
-include $(shell find $(B) -name '*.d' 2>/dev/null)
