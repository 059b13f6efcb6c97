# hutch-agent is one static binary, bind-mounted into every sandbox. Sanitizer and fuzz builds
# link it dynamically (ASan does not support static executables).
progs += hutch-agent
hutch-agent_srcs := $(wildcard src/hutch-agent/*.c)
hutch-agent_libs := ws http base
ifeq ($(SAN)$(FUZZ),00)
hutch-agent_static := 1
hutch-agent_ldlibs := -l:libjansson.a -lm
else
hutch-agent_ldlibs := -ljansson -lm
endif
