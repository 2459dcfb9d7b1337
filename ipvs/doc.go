// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

// Package ipvs programs the Linux IP Virtual Server over its generic
// netlink family ("IPVS", version 1), including the fullnat extension:
// the FULLNAT forwarding method, FULLNAT local addresses, the SYNPROXY
// service flag and the per-service ESTABLISHED timeout.
//
// # Client
//
// A Client holds one netlink socket in one network namespace (New, or
// NewInNamespace for another one) and is safe for concurrent use. Every
// upstream command is covered: services (Services, Service,
// CreateService, UpdateService, DeleteService), destinations,
// sync daemons, timeouts, Info, ZeroService, ZeroAll and Flush. The
// extension adds LocalAddresses, CreateLocalAddress and
// DeleteLocalAddress. ServicesWithDestinations lists the whole table
// (what "ipvsadm -L" shows): in one dump on our module (FeatureTableDump,
// see "Table dump" below), otherwise running the per-service destination
// dumps in parallel on a few helper sockets.
//
// Every method that talks to the kernel takes a context.Context first. A
// call whose context is done returns an error matching the context's error
// (errors.Is(err, context.Canceled) or context.DeadlineExceeded); the
// client then drops its socket, so no half-read reply reaches the next
// call, which opens a new one in the same namespace. Work the kernel does
// inside one system call cannot be interrupted: the context is seen when
// that call returns. A change cancelled after it was sent may have been
// applied.
//
// Apply sends a Batch of changes pipelined on the one socket: a window of
// requests goes out in one write, and the kernel answers only the failed
// ones and the last of the window. It reports which operations failed and
// why in a *BatchError. This is what makes restoring thousands of
// services fast.
//
// The client's socket is mdlayher/netlink's Conn: ordinary system calls on
// a non-blocking descriptor, waiting in the Go runtime's network poller, so
// the IPVS work the kernel does inside them (mutex waits, module loading,
// long dumps) never stalls the scheduler or a garbage collection. Fakes
// (package ipvstest, for consumers' tests too, and NewFromDialer) sit
// behind the same netlink.Conn, so they exercise the production framing,
// ack and error parsing. Listing thousands of services
// on a stock kernel (one dump of services, then one dump of destinations per
// service, as upstream has no "all destinations" dump) is dominated by round
// trips; the per-service dumps run in parallel on a few extra sockets.
//
// # Desired and observed state
//
// A Service or Destination read back from the kernel has its defaults
// filled in (family, scheduler "wlc", a full netmask), FlagHashed set and
// counters. Service.Equal and Destination.Equal compare two in the form
// the kernel reports (Normalized), so that a reconciler compares what it
// wants with what it lists without knowing any of those defaults, and
// Service.SameKey matches the two by virtual service. The
// package's README has a reconciler built on them.
//
// # Extension features
//
// The first request that may need the extension asks the kernel for
// IPVS_INFO_ATTR_FEATURES once and caches the answer for the client's
// lifetime (open a new client after swapping the ip_vs module). A request that
// needs a feature the running module lacks (FullNAT destinations, local
// addresses, FlagSynProxy, EstablishedTimeout, ProxyProtocol) fails before
// anything is sent with an error matching ErrNotSupported that names the
// feature.
//
// # PROXY protocol
//
// Service.ProxyProtocol (IPVS_SVC_ATTR_PROXY_PROTOCOL, attribute 14, a
// u8: 0 off, 1 v1, 2 v2; feature bit IPVS_FEATURE_PROXY_PROTOCOL, 0x10,
// FeatureProxyProtocol) makes the director insert a PROXY protocol header
// at the start of each connection's client-to-server byte stream. It is
// sent on create and update only to a module with the feature, and the
// kernel reports it only when it is on. Our module refuses it (EOPNOTSUPP,
// matching ErrProxyProtocolNotAllowed) on a service that is not TCP (a
// fwmark service counts as TCP), when turning it on for a service with a
// real server that is not FullNAT, and for a NAT, DR or tunnel real server
// of a service that has it.
//
// # Table dump
//
// Our module adds IPVS_CMD_GET_TABLE (command 21, a dump, GENL_ADMIN_PERM,
// no attributes), reported by the feature bit IPVS_FEATURE_TABLE_DUMP
// (0x8, FeatureTableDump). It dumps every service of the namespace as
// IPVS_CMD_NEW_SERVICE (as GET_SERVICE) followed by its destinations as
// IPVS_CMD_NEW_DEST messages carrying the service's key (AF plus FWMARK,
// or PROTOCOL, ADDR and PORT) in IPVS_CMD_ATTR_SERVICE and the
// destination in IPVS_CMD_ATTR_DEST. Every configuration change bumps the
// namespace's table generation, which the dump gives genetlink's
// consistency check: a dump that spans a change has NLM_F_DUMP_INTR on a
// message. ServicesWithDestinations repeats such a dump up to five times,
// then fails with an error matching ErrDumpInterrupted (cmd/ipvsadm then
// lists service by service, as ipvsadm 1.31 does). With
// IPVS_FEATURE_TABLE_LADDRS (0x80, FeatureTableLaddrs) each service's
// destinations are followed by its local addresses, as IPVS_CMD_NEW_LADDR
// messages carrying the service's key and IPVS_CMD_ATTR_LADDR as GET_LADDR
// gives it (ServiceDestinations.LocalAddresses); adding or removing one
// interrupts a dump like any change. With IPVS_FEATURE_TABLE_NO_STATS
// (0x100, FeatureTableNoStats) the request may carry
// IPVS_CMD_ATTR_TABLE_FLAGS (9, a u32) with IPVS_TABLE_F_NO_STATS (0x1):
// the dump then leaves the STATS and STATS64 nests out of every message
// (ServicesWithDestinations with WithoutStats). A bit the kernel does not
// know is EINVAL, and so is the attribute on a kernel without the feature
// (genetlink's strict validation), so the library sends it only with the
// feature.
//
// # Connection dump
//
// Our module adds IPVS_CMD_GET_CONN (command 22, a dump, GENL_ADMIN_PERM),
// reported by IPVS_FEATURE_CONN_DUMP (0x40, FeatureConnDump). It dumps the
// namespace's connections and persistence templates, or with
// IPVS_CMD_ATTR_SERVICE (a service key, as GET_DEST takes) those whose
// real server belongs to that service (ESRCH when there is no such
// service). Each is one IPVS_CMD_GET_CONN message with a nest
// IPVS_CMD_ATTR_CONN (8) of IPVS_CONN_ATTR_*: 1 AF (u16), 2 PROTOCOL (u16),
// 3 CADDR, 5 VADDR, 7 DADDR (16-byte addresses), 4 CPORT, 6 VPORT, 8 DPORT
// (be16), 9 DAF (u16, the real server's family), 10 FLAGS (u32,
// IP_VS_CONN_F_*), 11 STATE (string, as /proc names it), 12 EXPIRES and
// 13 TIMEOUT (u32, milliseconds left and the state's whole timeout),
// 14 FWMARK (u32), 15 LADDR and 16 LPORT (FULLNAT connections once bound),
// 17 SYNPROXY (u32, SYNPROXY connections only: 0x1 once the real server
// answered), 18 PE_NAME and 19 PE_DATA. Each part of the dump resumes the
// walk where the previous one stopped; an entry created or expiring
// during the dump may or may not be listed. Where the kernel replaces its
// table (a resize, Linux 7.x) the dump reports NLM_F_DUMP_INTR and
// Connections ends with an error matching ErrDumpInterrupted.
//
// # Connection sync of FULLNAT and SYNPROXY connections
//
// Our module's sync daemons (StartDaemon, unchanged) also carry FULLNAT and
// SYNPROXY connections, with their local address and port and sequence
// offsets, in two mandatory sync options (kmod/CLUSTER.md); a backup
// creates them bound to the sender's local address and port. The feature
// bit IPVS_FEATURE_SYNC_FULLNAT (0x20, FeatureSyncFullNAT) says the module
// does this. The sysctls fullnat_sync_flush_ms and fullnat_sync_resend
// (net.ipv4.vs) bound how long a connection waits in a partly filled
// message and make a peer send its whole table to a director that joins.
//
// # Errors
//
// Errors are *Error values naming the operation and the object. Kernel
// errnos map onto the package's sentinels, by operation where IPVS is
// ambiguous: ErrNotFound (also os.ErrNotExist) for a missing service,
// destination, local address or daemon; ErrModuleNotFound for a scheduler
// or persistence engine module that is not available (ENOENT on creating
// or updating a service, which does not match ErrNotFound); ErrExist (also
// os.ErrExist) for EEXIST; ErrPermission (also os.ErrPermission) for EPERM
// and EACCES (no CAP_NET_ADMIN in the initial user namespace; IPVS needs
// it even for reading); ErrDumpInterrupted for a listing the kernel
// flagged inconsistent. See ErrNotFound for the table.
//
// # Wire details
//
// Service.Netmask is the mask as a number for IPv4 (0xffffff00) and the
// prefix length for IPv6, zero meaning a full mask. Create and Update
// send the whole service, with flag mask ~0, like ipvsadm: fields left
// zero are reset (scheduler "wlc", no persistence). Destination updates
// send every field likewise. A batched update (Op.Keep) can leave
// FlagSynProxy out of the mask and send no ESTABLISHED timeout and no
// PROXY protocol version: the kernel starts an update from the service's
// own flags, timeout and version.
//
// # Connection tables
//
// Client.Connections and ServiceConnections stream the connection table
// (iter.Seq2): with the extension's FeatureConnDump as one netlink dump
// (IPVS_CMD_GET_CONN, below), else from the stock /proc table of the
// client's namespace. Upstream IPVS has no netlink dump of connections.
// ParseConnections and ReadConnections stream the text tables one entry
// at a time, so a million connections never sit in one slice. The stock
// /proc/net/ip_vs_conn has the header
//
//	Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//
// with IPv4 addresses as 8 hex digits, IPv6 addresses in full colon form,
// ports as 4 hex digits and Expires in seconds. The extension's
// /proc/net/ip_vs_conn_fnat (kmod/) lists FULLNAT connections with the
// stock columns up to Expires plus the local address and port between the
// virtual and the destination columns (Alibaba's order and header):
//
//	Pro FromIP   FPrt ToIP     TPrt LocalIP  LPrt DestIP   DPrt State       Expires
//
// each line formatted like the stock one, "%-3s %08X %04X %08X %04X %08X
// %04X %08X %04X %-11s %7u" for IPv4 and %pI6 for IPv6 addresses. The
// parser finds the columns from the header (PEName and PEData, when a
// header has them, are optional at the end of a line), so the stock file,
// ours and Alibaba's parse with one function.
//
// /proc/net shows the network namespace of the reading thread's process:
// to read another namespace's table, read /proc/<pid>/net/ip_vs_conn of a
// process inside it (or run the reader there).
package ipvs
