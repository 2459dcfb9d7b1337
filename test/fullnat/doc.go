// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package fullnat holds the VM tests of the FULLNAT kernel module (kmod/): a client namespace
// reaches a virtual service on the director, whose real servers have no route back to the
// client, through our ip_vs.ko with forwarding method FULLNAT and local-address pools.
//
// The tests are tagged vmtest and run in the rig with RIG_MODULES=ours (see rig/README.md).
// They configure services with Debian's ipvsadm where it can, and with a small generic netlink
// client of their own (ipvsnl_vm_test.go) for what it cannot: FULLNAT destinations and local
// addresses.
package fullnat
