# Sandbox networking: veths, addresses, the egress policy in nftables (libnftnl over libmnl),
# the per-sandbox DNS forwarder (libuv). See lib/net/net.h and docs/design/network.md.
libs += net
net_srcs := $(wildcard lib/net/*.c)
# lib/net uses apimodel (netpol_entry_parse) and base, which sort before it among the archives:
# naming them again here puts them after libhutch_net.a on every link line, whatever the order.
net_ldlibs := $(B)/lib/libhutch_apimodel.a $(B)/lib/libhutch_base.a -lnftnl -lmnl -luv -ljansson

# The integration tests' and the benchmark's driver for lib/net (tests/integration/helpers/net/).
progs += hutch-netdrv
hutch-netdrv_srcs := $(wildcard tests/integration/helpers/net/*.c)
hutch-netdrv_libs := net apimodel base
hutch-netdrv_ldlibs :=
