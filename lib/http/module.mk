libs += http
http_srcs := $(wildcard lib/http/*.c)
http_ldlibs := -luv -lhttp_parser
http_ldlibs_static := -l:libuv_a.a -l:libhttp_parser.a -lpthread -ldl
