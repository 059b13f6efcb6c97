progs += hutch
hutch_srcs := $(wildcard src/hutch/*.c)
hutch_libs := runtime http ws base
hutch_ldlibs := -lcurl -ljansson
