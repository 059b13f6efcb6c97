libs += proxy
proxy_srcs := $(wildcard lib/proxy/*.c)
proxy_ldlibs := -lpthread
