// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package synproxy holds the VM tests of SYNPROXY in our ip_vs.ko (kmod/ip_vs_synproxy.c): the
// director answers SYNs to a service with the SYNPROXY flag with cookies, so a SYN flood from
// spoofed sources never reaches the real servers while genuine clients still get through.
//
// The tests are tagged vmtest and run in the rig with RIG_MODULES=ours (see rig/README.md).
// The flooder is a raw socket opened in the client namespace; it sends a bounded number of
// packets from 198.18.0.0/15 to the VIP and nothing leaves the VM.
package synproxy
