libs += base
base_srcs := $(wildcard lib/base/*.c)
