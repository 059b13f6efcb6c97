libs += ws
ws_srcs := $(wildcard lib/ws/*.c)
ws_ldlibs :=
