# Unit tests: one binary per tests/unit/test_*.c, linked with every library archive (the linker
# keeps only what a test uses) and every library's declared link flags.
unit_tests += $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
unit_libs = $(filter-out base,$(libs)) base
unit_ldlibs :=
