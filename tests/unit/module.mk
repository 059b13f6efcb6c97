# Unit tests: one binary per tests/unit/test_*.c, linked with every library archive.
unit_tests += $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
unit_libs := $(filter-out base,$(libs)) base
unit_ldlibs := $(sort $(foreach p,$(progs),$($(p)_ldlibs))) -luv -ljansson -lhttp_parser
