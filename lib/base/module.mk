libs += base
base_ldlibs :=
base_srcs := $(wildcard lib/base/*.c)
