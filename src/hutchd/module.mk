progs += hutchd
hutchd_srcs := $(shell find src/hutchd -name '*.c')
hutchd_libs := proxy ws net runtime apimodel auth store http base
hutchd_ldlibs := -ljansson
