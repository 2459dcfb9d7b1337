// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package packets runs the packet fixtures of testdata/packets in the VM rig: each fixture sets
// up a virtual service, sends hand-made packets from the client or a real server, and pins every
// header field of what the director makes of them (internal/pktfix is the packet language).
//
// A fixture is a list of steps, one per line ('#' starts a comment):
//
//	run NODE SHELL-COMMAND          run a command in NODE's namespace; our ipvsadm is first in PATH
//	                                and the variables bound so far are in the environment, so
//	                                `run client test "${LPORT:?}" -ge 5000` checks one; a command
//	                                that fails fails the fixture
//	send NODE PACKET                send PACKET from NODE on a raw socket
//	expect NODE in|out PACKET       NODE receives (in) or sends (out) PACKET on eth0 within 3 s
//	                                (every field given); an ICMP message, a fragment or a packet
//	                                with IPv6 extension headers fails it
//	quiet NODE in|out DURATION      NODE receives (sends) no IP packet at all for DURATION, and
//	                                none came earlier that no step expected
//	sleep DURATION
//
// NODE is client, director or rs1 (198.51.100.11, 2001:db8:2::11; lvs-peer serves TCP and UDP
// port 80 there, TCP port 81 after a PROXY protocol header, and on TCP port 82 it speaks first,
// after a PROXY protocol header). Packets sent from the client use the ghost addresses 192.0.2.3 and 2001:db8:1::3: the director has a permanent neighbour entry for them pointing at the client's
// eth0, so replies are captured there, but the client's stack does not own them and so does not
// reset a handshake it never made. Variables bound by one step hold in the next ones.
//
// Expect steps on one node and direction may be met in either order: the VM has two CPUs, and a
// real server's ACK and its answer can cross the director on different CPUs and reach the client
// swapped. An expect step takes the first packet that matches among those not yet expected; a
// packet that no step expects fails the fixture at the next quiet step or at the end. The capture
// passes over what is not the director's doing: ARP, IPv6 neighbour discovery and MLD, IGMP.
//
// The fixtures are played by a vmtest-tagged test with our modules (RIG_MODULES=ours, see
// rig/README.md); on the host, every fixture is parsed, so a typo fails in the unit tests.
package packets
