libs += auth
auth_srcs := $(wildcard lib/auth/*.c)
auth_ldlibs := -lcrypto
