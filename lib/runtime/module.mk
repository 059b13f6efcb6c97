# The sandbox runtime library (namespaces, cgroups, disks, mounts, seccomp, images).
libs += runtime
runtime_srcs := $(wildcard lib/runtime/*.c)
runtime_ldlibs := -lseccomp -larchive -ljansson -lcrypto -lpthread
