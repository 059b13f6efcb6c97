libs += store
store_srcs := $(wildcard lib/store/*.c)
store_ldlibs := -lsqlite3
