progs += hutch-agent
hutch-agent_srcs := $(wildcard src/hutch-agent/*.c)
hutch-agent_libs := ws http base
hutch-agent_static := 1
hutch-agent_ldlibs := -l:libjansson.a -lm
