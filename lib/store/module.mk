libs += store
store_srcs := $(wildcard lib/store/*.c)
store_ldlibs := -lsqlite3 $(shell pkg-config --libs libpq)
$(B)/lib/store/db-pg.o: ALL_CFLAGS += $(shell pkg-config --cflags libpq)
