// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package proxyproto tests FULLNAT with the PROXY protocol in the VM rig against real servers
// that read it without any kernel module: Debian's nginx (`listen ... proxy_protocol`, the
// client in `$proxy_protocol_addr`, 1 MB PUT and GET through its WebDAV module), Debian's haproxy
// (`accept-proxy`, passing the client on to lvs-peer with `send-proxy-v2`), and lvs-peer itself
// as a server that speaks first; versions 1 and 2, IPv4 and IPv6, with and without SYNPROXY, and
// transfers under 3% loss each way.
package proxyproto
