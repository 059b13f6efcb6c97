# Sandbox networking: veths, addresses, the egress policy in nftables (libnftnl over libmnl),
# the per-sandbox DNS forwarder (libuv). See lib/net/net.h and docs/design/network.md.
libs += net
net_srcs := $(wildcard lib/net/*.c)
net_ldlibs := -lnftnl -lmnl -luv -ljansson

# The integration tests' and the benchmark's driver for lib/net (tests/integration/helpers/net/).
progs += hutch-netdrv
hutch-netdrv_srcs := $(wildcard tests/integration/helpers/net/*.c)
hutch-netdrv_libs := net apimodel base
hutch-netdrv_ldlibs :=
