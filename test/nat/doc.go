// Package nat holds the rig's first end-to-end test: a NAT virtual service configured with
// Debian's C ipvsadm 1.31 carries TCP and UDP from a client namespace to two real servers, IPv4
// and IPv6. It runs in the VM with the stock module and with ours (NAT must not notice the
// difference). Run it with rig/vmtest.sh ./test/nat.
package nat
