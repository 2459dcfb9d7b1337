// Package compat proves that the stock tools keep working: Debian's C ipvsadm 1.31 and keepalived
// 2.2.7 drive NAT, DR and TUN virtual services that carry TCP and UDP from a client namespace to
// real-server namespaces, IPv4 and IPv6. It runs in the VM with the stock ip_vs module and with
// ours, which must not be told apart. Run it with rig/vmtest.sh ./test/compat.
package compat
