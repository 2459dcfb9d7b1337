// SPDX-License-Identifier: GPL-2.0-only
/*
 * toa.ko - TCP Option Address on the real server behind a FULLNAT director.
 *
 * A FULLNAT director rewrites both addresses of a connection, so the real
 * server sees the director's local address as its peer.  The director puts
 * the client's address into a TCP option of the segments that open the
 * connection:
 *
 *	kind 254, length 8:  u8 kind, u8 len, be16 port, be32 IPv4 address
 *	kind 253, length 20: u8 kind, u8 len, be16 port, 16-byte IPv6 address
 *	kind 254, length 20: the same IPv6 layout, as sent by DPVS
 *
 * This module reads the option from the segment that completes the
 * handshake and makes getpeername() and accept() of the new socket return
 * the client instead of the director.  AF_INET sockets get an IPv4 client;
 * AF_INET6 sockets get an IPv6 client or ::ffff:a.b.c.d for an IPv4 one.
 *
 * Hooking: kretprobes, and why.
 *
 * The classic TOA modules overwrite ipv4_specific.syn_recv_sock and
 * inet_stream_ops.getname.  On Debian's 6.1 and 6.12 kernels that needs
 * (a) writing into const, read-only tables, which is only possible by
 * flipping page-table bits behind CONFIG_STRICT_KERNEL_RWX's back, with a
 * different hack per architecture; (b) symbols that are not exported
 * (ipv4_specific and tcp_v4_syn_recv_sock are EXPORT_IPV6_MOD on 6.12, so
 * they vanish when IPv6 is built in; tcp_v6_syn_recv_sock is static), so
 * kallsyms_lookup_name() has to be dug out through a kprobe anyway; (c) a
 * wrapper with the exact prototype of the function it replaces: Debian's
 * stable updates of both 6.1 and 6.12 appended a seventh argument,
 * opt_child_init, to syn_recv_sock, and a six-argument wrapper silently
 * drops it and breaks v4-mapped children; and (d) the wrapper is on the
 * stack of every task sleeping in lock_sock() inside inet_getname(), so
 * unloading the module frees code those tasks will return into.  An ftrace
 * ops with IPMODIFY (the livepatch mechanism) fixes (a)-(b) but not (d),
 * and conflicts with livepatch on the same functions; fprobe's handler
 * prototypes changed between 6.1 and 6.12.
 *
 * A kretprobe uses only the documented kprobes API, unchanged since 2.6:
 * the core resolves the probed symbol itself (static and unexported
 * functions included), the handlers read the arguments they need by
 * position only (the skb and own_req of syn_recv_sock, the socket, buffer
 * and peer flag of getname), so an appended argument does not matter; the
 * return trampoline belongs to the kernel, so a task that sleeps inside a
 * probed function while the module goes away simply returns without
 * calling the handler; and unregister_kretprobes() waits for handlers that
 * are running.  The price is that a probe hit is skipped when another
 * kprobe runs on the same CPU at that instant, or when all maxactive
 * instances are in use (counted in nmissed: in toa_stats, and printed at
 * unload): the connection then shows its real peer, never a wrong one.
 *
 * Storage: the client is kept in a table of this module keyed by the
 * socket, not in sk_user_data, whose low bits are flags of sockmap and
 * friends and which other users own.  The entry is removed by a kprobe on
 * tcp_v4_destroy_sock(), which every full TCP socket, IPv4 and IPv6, goes
 * through before it is freed on 6.1 and 6.12; the remaining entries are
 * freed at unload.  Should that probe miss a hit, the entry stays behind
 * under the address of a freed socket: a new child socket created there
 * without a TOA removes it, one with a TOA replaces it.  An entry also
 * records the real peer the option came with; getname() applies it only
 * while the socket is still connected to that peer, so a disconnected and
 * reconnected socket never shows a stale client.
 *
 * Trust: net.toa.allow.
 *
 * A TOA is only as good as its sender: anyone who reaches the real server
 * without going through the director can put any address in the option.
 * Each network namespace (the one of the listening socket) has the sysctl
 * net.toa.allow, a list of at most 64 IPv4 and IPv6 prefixes (a.b.c.d/n,
 * x:y::z/n; no length means the whole address).  When the list is not
 * empty, a TOA is honoured only if the source address of the segment that
 * carried it, the director's local address, lies in one of the prefixes;
 * otherwise the option is ignored, the socket shows its real peer and
 * syn_recv_sock_untrusted counts it.  An empty list, the default, trusts
 * every sender as the module always did.
 *
 * A sysctl rather than a file in /proc/net: the kernel's net sysctl root
 * already gives the rights of the file's owner (0644) to whoever holds
 * CAP_NET_ADMIN in the user namespace that owns the network namespace (and,
 * as for every sysctl, to uid 0 of the initial user namespace), and shows
 * the file as owned by that namespace's root, both decided at access
 * time, so that a container's root may write its own namespace's list and
 * no other; a /proc/net file's owner is fixed when it is
 * created, which for a namespace made together with its user namespace is
 * before that user namespace has any uid mapped.  A write replaces the whole
 * list at once: prefixes separated by white space, parsed completely before
 * the list is swapped under RCU, so a reader sees the old list or the new
 * one, never a mix, and a write with any invalid prefix (EINVAL: a bad
 * address or length, host bits beyond the length, an IPv4-mapped IPv6
 * address, a write that does not start at offset 0) or with more than 64
 * distinct prefixes (E2BIG) changes nothing.  An empty write empties the
 * list.  Reading returns the canonical form, one space between prefixes.
 * The packet path reads the list under RCU in the syn_recv_sock return
 * handler, and only for a handshake that carried a TOA.
 *
 * /proc/net/toa_stats, per network namespace, has Alibaba's counters:
 *	syn_recv_sock_toa	child socket created, handshake carried a TOA
 *	syn_recv_sock_no_toa	child socket created without a TOA
 *	getname_toa_ok		getpeername()/accept() returned the client
 *	getname_toa_mismatch	TOA kept, but this socket cannot show it
 *				(IPv6 client on an AF_INET socket)
 *	getname_toa_bypass	TOA kept, but the call failed or the socket
 *				is no longer connected to the peer it came from
 *	getname_toa_empty	getname() on a TCP socket without TOA, or
 *				getsockname()
 * and after them, in the same layout:
 *	syn_recv_sock_untrusted	child socket created, handshake carried a TOA
 *				from a sender not in net.toa.allow: ignored
 *	syn_recv_sock_missed	probe hits of tcp_v4/v6_syn_recv_sock missed:
 *				connections that may show the director
 *	getname_missed		probe hits of inet/inet6_getname missed:
 *				calls that returned the director
 *	destroy_sock_missed	probe hits of tcp_v4_destroy_sock missed:
 *				table entries left behind (see Storage)
 * The three *_missed lines are the probes' nmissed, module-wide and the
 * same in every namespace, not per CPU: the total is in the first column
 * and the others are 0, so that every line still sums to its count.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/hash.h>
#include <linux/rculist.h>
#include <linux/spinlock.h>
#include <linux/percpu.h>
#include <linux/cpumask.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/seq_file_net.h>
#include <linux/skbuff.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/inet.h>
#include <linux/if_ether.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/ctype.h>
#include <linux/sysctl.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/sock.h>
#include <net/ip_vs_compat.h>
#include <net/tcp.h>

#define TOA_KIND_V4	254
#define TOA_KIND_V6	253
#define TOA_LEN_V4	8
#define TOA_LEN_V6	20

#define TOA_HASH_BITS	14

/* Prefixes in net.toa.allow of one namespace. */
#define TOA_ALLOW_MAX	64

enum {
	TOA_SYN_RECV_SOCK_TOA,
	TOA_SYN_RECV_SOCK_NO_TOA,
	TOA_GETNAME_TOA_OK,
	TOA_GETNAME_TOA_MISMATCH,
	TOA_GETNAME_TOA_BYPASS,
	TOA_GETNAME_TOA_EMPTY,
	TOA_SYN_RECV_SOCK_UNTRUSTED,
	TOA_STAT_MAX,
};

static const char * const toa_stat_names[TOA_STAT_MAX] = {
	[TOA_SYN_RECV_SOCK_TOA]		= "syn_recv_sock_toa",
	[TOA_SYN_RECV_SOCK_NO_TOA]	= "syn_recv_sock_no_toa",
	[TOA_GETNAME_TOA_OK]		= "getname_toa_ok",
	[TOA_GETNAME_TOA_MISMATCH]	= "getname_toa_mismatch",
	[TOA_GETNAME_TOA_BYPASS]	= "getname_toa_bypass",
	[TOA_GETNAME_TOA_EMPTY]		= "getname_toa_empty",
	[TOA_SYN_RECV_SOCK_UNTRUSTED]	= "syn_recv_sock_untrusted",
};

struct toa_stats {
	unsigned long cnt[TOA_STAT_MAX];
};

/*
 * A prefix of net.toa.allow.  IPv4 is kept v4-mapped with the length
 * counted over the IPv6 form (IPv4 /24 is /120), so that one comparison
 * serves both; v4 keeps ::/0 from matching IPv4 senders.
 */
struct toa_prefix {
	struct in6_addr addr;
	u8 plen;
	bool v4;
};

struct toa_allow {
	struct rcu_head rcu;
	unsigned int n;
	struct toa_prefix p[];
};

struct toa_net {
	struct toa_stats __percpu *stats;
	struct toa_allow __rcu *allow;	/* NULL: trust every sender */
	struct mutex allow_lock;	/* serialises writers of allow */
	struct ctl_table_header *sysctl_hdr;
	struct ctl_table *sysctl_tbl;
};

static unsigned int toa_net_id __read_mostly;

/* Addresses are kept as IPv6, IPv4 ones v4-mapped. */
struct toa_addr {
	struct in6_addr peer;		/* the real peer: the director */
	struct in6_addr client;		/* from the option */
	__be16 peer_port;
	__be16 client_port;
};

struct toa_entry {
	struct hlist_node node;
	const struct sock *sk;
	struct toa_addr addr;
	struct rcu_head rcu;
};

struct toa_bucket {
	spinlock_t lock;		/* protects head against writers */
	struct hlist_head head;
};

static struct toa_bucket *toa_table;
static atomic_t toa_entries = ATOMIC_INIT(0);

static void toa_count(const struct sock *sk, unsigned int idx)
{
	struct toa_net *tn;

	/*
	 * Only sockets that pin their namespace: the counters of a
	 * namespace go away with it.
	 */
	if (!sk->sk_net_refcnt)
		return;
	rcu_read_lock();
	tn = net_generic(sock_net(sk), toa_net_id);
	if (tn && tn->stats)
		this_cpu_inc(tn->stats->cnt[idx]);
	rcu_read_unlock();
}

static struct toa_bucket *toa_bucket(const struct sock *sk)
{
	return &toa_table[hash_ptr(sk, TOA_HASH_BITS)];
}

/*
 * The table is used from kprobe handlers, which may run in any context
 * and must not re-enable softirqs (that would run the network stack, and
 * its probes would be skipped, inside this handler): irqsave locking only.
 */
static bool toa_lookup(const struct sock *sk, struct toa_addr *addr)
{
	struct toa_bucket *b = toa_bucket(sk);
	struct toa_entry *e;
	bool found = false;

	rcu_read_lock();
	hlist_for_each_entry_rcu(e, &b->head, node) {
		if (e->sk == sk) {
			*addr = e->addr;
			found = true;
			break;
		}
	}
	rcu_read_unlock();
	return found;
}

static void toa_remove(const struct sock *sk)
{
	struct toa_bucket *b = toa_bucket(sk);
	struct toa_entry *e;
	struct hlist_node *n;
	unsigned long flags;

	spin_lock_irqsave(&b->lock, flags);
	hlist_for_each_entry_safe(e, n, &b->head, node) {
		if (e->sk == sk) {
			hlist_del_rcu(&e->node);
			atomic_dec(&toa_entries);
			kfree_rcu(e, rcu);
		}
	}
	spin_unlock_irqrestore(&b->lock, flags);
}

static bool toa_insert(const struct sock *sk, const struct toa_addr *addr)
{
	struct toa_bucket *b = toa_bucket(sk);
	struct toa_entry *e, *old;
	struct hlist_node *n;
	unsigned long flags;

	e = kmalloc(sizeof(*e), GFP_ATOMIC);
	if (!e)
		return false;
	e->sk = sk;
	e->addr = *addr;

	spin_lock_irqsave(&b->lock, flags);
	/* A socket is created once; replace anything left behind anyway. */
	hlist_for_each_entry_safe(old, n, &b->head, node) {
		if (old->sk == sk) {
			hlist_del_rcu(&old->node);
			atomic_dec(&toa_entries);
			kfree_rcu(old, rcu);
		}
	}
	hlist_add_head_rcu(&e->node, &b->head);
	atomic_inc(&toa_entries);
	spin_unlock_irqrestore(&b->lock, flags);
	return true;
}

/*
 * Scan the options of a TCP header of @len bytes (doff * 4) for the first
 * well-formed TOA.  Malformed option lists (a length below 2 or past the
 * end) stop the scan; TOA kinds with another length are skipped.
 */
static bool toa_parse(const struct tcphdr *th, unsigned int len,
		      struct toa_addr *addr)
{
	const u8 *p = (const u8 *)(th + 1);
	int left = (int)len - (int)sizeof(*th);

	while (left > 0) {
		u8 kind = p[0];
		u8 olen;

		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			p++;
			left--;
			continue;
		}
		if (left < 2)
			break;
		olen = p[1];
		if (olen < 2 || olen > left)
			break;
		if (kind == TOA_KIND_V4 && olen == TOA_LEN_V4) {
			__be32 v4;

			memcpy(&addr->client_port, p + 2, sizeof(__be16));
			memcpy(&v4, p + 4, sizeof(v4));
			ipv6_addr_set_v4mapped(v4, &addr->client);
			return v4 != 0;
		}
		if ((kind == TOA_KIND_V6 || kind == TOA_KIND_V4) &&
		    olen == TOA_LEN_V6) {
			memcpy(&addr->client_port, p + 2, sizeof(__be16));
			memcpy(&addr->client, p + 4, sizeof(addr->client));
			return !ipv6_addr_any(&addr->client);
		}
		p += olen;
		left -= olen;
	}
	return false;
}

/* The TOA of @skb, the segment that completes the handshake, if any. */
static bool toa_from_skb(const struct sk_buff *skb, struct toa_addr *addr)
{
	const struct tcphdr *th;
	unsigned int len;

	if (!skb || !skb_transport_header_was_set(skb))
		return false;
	th = tcp_hdr(skb);
	len = th->doff * 4;
	if (len <= sizeof(*th) ||
	    skb_transport_offset(skb) + len > skb_headlen(skb))
		return false;

	switch (ntohs(skb->protocol)) {
	case ETH_P_IP:
		ipv6_addr_set_v4mapped(ip_hdr(skb)->saddr, &addr->peer);
		break;
	case ETH_P_IPV6:
		addr->peer = ipv6_hdr(skb)->saddr;
		break;
	default:
		return false;
	}
	addr->peer_port = th->source;
	return toa_parse(th, len, addr);
}

/*
 * Whether @net accepts a TOA from @peer, the source address of the segment
 * that carried it (v4-mapped for IPv4): yes when its allow-list is empty
 * or holds a prefix of @peer.
 */
static bool toa_trusted(struct net *net, const struct in6_addr *peer)
{
	struct toa_net *tn = net_generic(net, toa_net_id);
	const struct toa_allow *a;
	bool v4 = ipv6_addr_v4mapped(peer);
	bool ok = true;
	unsigned int i;

	rcu_read_lock();
	a = rcu_dereference(tn->allow);
	if (a) {
		ok = false;
		for (i = 0; i < a->n; i++) {
			if (a->p[i].v4 == v4 &&
			    ipv6_prefix_equal(peer, &a->p[i].addr,
					      a->p[i].plen)) {
				ok = true;
				break;
			}
		}
	}
	rcu_read_unlock();
	return ok;
}

/* ---- syn_recv_sock: remember the client of a new child socket ---------- */

struct toa_synrecv_data {
	bool *own_req;
	bool found;
	struct toa_addr addr;
};

static int toa_synrecv_entry(struct kretprobe_instance *ri,
			     struct pt_regs *regs)
{
	struct toa_synrecv_data *d = (struct toa_synrecv_data *)ri->data;
	const struct sk_buff *skb;

	/* (const struct sock *sk, struct sk_buff *skb, ..., bool *own_req) */
	skb = (const struct sk_buff *)regs_get_kernel_argument(regs, 1);
	d->own_req = (bool *)regs_get_kernel_argument(regs, 5);
	d->found = toa_from_skb(skb, &d->addr);
	return 0;
}

static int toa_synrecv6_entry(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	const struct sk_buff *skb;

	/*
	 * An IPv4 segment on an IPv6 listener: tcp_v6_syn_recv_sock() hands
	 * it to tcp_v4_syn_recv_sock(), whose probe records it.
	 */
	skb = (const struct sk_buff *)regs_get_kernel_argument(regs, 1);
	if (!skb || skb->protocol != htons(ETH_P_IPV6))
		return 1;
	return toa_synrecv_entry(ri, regs);
}

static int toa_synrecv_ret(struct kretprobe_instance *ri,
			   struct pt_regs *regs)
{
	struct toa_synrecv_data *d = (struct toa_synrecv_data *)ri->data;
	struct sock *newsk = (struct sock *)regs_return_value(regs);
	unsigned int idx = TOA_SYN_RECV_SOCK_NO_TOA;

	/*
	 * Without own_req the child lost the race for the request and has
	 * already been destroyed: it must not get an entry.
	 */
	if (!newsk || !d->own_req || !READ_ONCE(*d->own_req))
		return 0;
	if (d->found && !toa_trusted(sock_net(newsk), &d->addr.peer))
		idx = TOA_SYN_RECV_SOCK_UNTRUSTED;
	else if (d->found && toa_insert(newsk, &d->addr))
		idx = TOA_SYN_RECV_SOCK_TOA;
	toa_count(newsk, idx);
	/*
	 * The socket may reuse the memory of one whose destruction the probe
	 * missed (destroy_sock_missed): that one's entry is not this one's.
	 */
	if (idx != TOA_SYN_RECV_SOCK_TOA && atomic_read(&toa_entries))
		toa_remove(newsk);
	return 0;
}

/* ---- getname: show the client to getpeername() and accept() ------------ */

struct toa_getname_data {
	struct sock *sk;
	struct sockaddr *uaddr;
	struct toa_addr addr;
};

static int toa_getname_entry(struct kretprobe_instance *ri,
			     struct pt_regs *regs)
{
	struct toa_getname_data *d = (struct toa_getname_data *)ri->data;
	struct socket *sock;
	struct sock *sk;
	int peer;

	/* (struct socket *sock, struct sockaddr *uaddr, int peer) */
	sock = (struct socket *)regs_get_kernel_argument(regs, 0);
	sk = sock ? sock->sk : NULL;
	if (!sk || sk->sk_type != SOCK_STREAM ||
	    sk->sk_protocol != IPPROTO_TCP)
		return 1;
	peer = (int)regs_get_kernel_argument(regs, 2);
	if (!peer || !atomic_read(&toa_entries) ||
	    !toa_lookup(sk, &d->addr)) {
		toa_count(sk, TOA_GETNAME_TOA_EMPTY);
		return 1;
	}
	d->sk = sk;
	d->uaddr = (struct sockaddr *)regs_get_kernel_argument(regs, 1);
	return 0;
}

static unsigned int toa_rewrite(struct toa_getname_data *d, int len)
{
	const struct toa_addr *a = &d->addr;

	if (len < 0)
		return TOA_GETNAME_TOA_BYPASS;

	if (d->uaddr->sa_family == AF_INET &&
	    len >= (int)sizeof(struct sockaddr_in)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)d->uaddr;

		if (!ipv6_addr_v4mapped(&a->peer) ||
		    sin->sin_addr.s_addr != a->peer.s6_addr32[3] ||
		    sin->sin_port != a->peer_port)
			return TOA_GETNAME_TOA_BYPASS;
		if (!ipv6_addr_v4mapped(&a->client))
			return TOA_GETNAME_TOA_MISMATCH;
		sin->sin_port = a->client_port;
		sin->sin_addr.s_addr = a->client.s6_addr32[3];
		return TOA_GETNAME_TOA_OK;
	}

	if (d->uaddr->sa_family == AF_INET6 &&
	    len >= (int)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)d->uaddr;

		if (!ipv6_addr_equal(&sin6->sin6_addr, &a->peer) ||
		    sin6->sin6_port != a->peer_port)
			return TOA_GETNAME_TOA_BYPASS;
		sin6->sin6_port = a->client_port;
		sin6->sin6_addr = a->client;
		sin6->sin6_scope_id = 0;
		return TOA_GETNAME_TOA_OK;
	}

	return TOA_GETNAME_TOA_MISMATCH;
}

static int toa_getname_ret(struct kretprobe_instance *ri,
			   struct pt_regs *regs)
{
	struct toa_getname_data *d = (struct toa_getname_data *)ri->data;

	toa_count(d->sk, toa_rewrite(d, (int)regs_return_value(regs)));
	return 0;
}

/* ---- socket destruction ------------------------------------------------- */

static int toa_destroy_pre(struct kprobe *p, struct pt_regs *regs)
{
	/* void tcp_v4_destroy_sock(struct sock *sk) */
	if (atomic_read(&toa_entries))
		toa_remove((const struct sock *)regs_get_kernel_argument(regs, 0));
	return 0;
}

/* ---- probes -------------------------------------------------------------- */

static struct kretprobe toa_synrecv4_probe = {
	.kp.symbol_name	= "tcp_v4_syn_recv_sock",
	.entry_handler	= toa_synrecv_entry,
	.handler	= toa_synrecv_ret,
	.data_size	= sizeof(struct toa_synrecv_data),
};

static struct kretprobe toa_synrecv6_probe = {
	.kp.symbol_name	= "tcp_v6_syn_recv_sock",
	.entry_handler	= toa_synrecv6_entry,
	.handler	= toa_synrecv_ret,
	.data_size	= sizeof(struct toa_synrecv_data),
};

static struct kretprobe toa_getname4_probe = {
	.kp.symbol_name	= "inet_getname",
	.entry_handler	= toa_getname_entry,
	.handler	= toa_getname_ret,
	.data_size	= sizeof(struct toa_getname_data),
};

static struct kretprobe toa_getname6_probe = {
	.kp.symbol_name	= "inet6_getname",
	.entry_handler	= toa_getname_entry,
	.handler	= toa_getname_ret,
	.data_size	= sizeof(struct toa_getname_data),
};

static struct kretprobe *toa_kretprobes[] = {
	&toa_synrecv4_probe,
	&toa_synrecv6_probe,
	&toa_getname4_probe,
	&toa_getname6_probe,
};

static struct kprobe toa_destroy_probe = {
	.symbol_name	= "tcp_v4_destroy_sock",
	.pre_handler	= toa_destroy_pre,
};

/* ---- /proc/net/toa_stats ---------------------------------------------- */

static unsigned long toa_kretprobe_missed(const struct kretprobe *rp)
{
	return READ_ONCE(rp->nmissed) + READ_ONCE(rp->kp.nmissed);
}

/*
 * A module-wide count in the per-CPU layout: the total under the first
 * CPU, zeros under the others, so that a line still sums to its value.
 */
static void toa_stats_show_total(struct seq_file *seq, const char *name,
				 unsigned long total)
{
	int cpu;

	seq_printf(seq, "%-25s:", name);
	for_each_online_cpu(cpu) {
		seq_printf(seq, "%10lu ", total);
		total = 0;
	}
	seq_putc(seq, '\n');
}

static int toa_stats_show(struct seq_file *seq, void *v)
{
	struct toa_net *tn = net_generic(seq_file_single_net(seq), toa_net_id);
	unsigned int i;
	int cpu;

	seq_printf(seq, "%34s", "");
	for_each_online_cpu(cpu)
		seq_printf(seq, "CPU%d       ", cpu);
	seq_putc(seq, '\n');
	for (i = 0; i < TOA_STAT_MAX; i++) {
		seq_printf(seq, "%-25s:", toa_stat_names[i]);
		for_each_online_cpu(cpu)
			seq_printf(seq, "%10lu ",
				   per_cpu_ptr(tn->stats, cpu)->cnt[i]);
		seq_putc(seq, '\n');
	}
	toa_stats_show_total(seq, "syn_recv_sock_missed",
			     toa_kretprobe_missed(&toa_synrecv4_probe) +
			     toa_kretprobe_missed(&toa_synrecv6_probe));
	toa_stats_show_total(seq, "getname_missed",
			     toa_kretprobe_missed(&toa_getname4_probe) +
			     toa_kretprobe_missed(&toa_getname6_probe));
	toa_stats_show_total(seq, "destroy_sock_missed",
			     READ_ONCE(toa_destroy_probe.nmissed));
	return 0;
}

/* ---- net.toa.allow -------------------------------------------------------- */

/*
 * One prefix: an IPv4 or IPv6 address, optionally followed by /length
 * (default: the whole address).  Host bits beyond the length are refused
 * as ip-route does: 10.0.0.1/24 is more likely a typo than a network.
 */
static int toa_parse_prefix(char *s, struct toa_prefix *p)
{
	char *slash = strchr(s, '/');
	int alen = slash ? slash - s : strlen(s);
	struct in6_addr masked;
	const char *end;
	u8 max, plen;

	memset(p, 0, sizeof(*p));
	if (strnchr(s, alen, ':')) {
		if (!in6_pton(s, alen, p->addr.s6_addr, -1, &end) ||
		    end != s + alen)
			return -EINVAL;
		/* ::ffff:a.b.c.d never is an IPv6 sender: write a.b.c.d. */
		if (ipv6_addr_v4mapped(&p->addr))
			return -EINVAL;
		max = 128;
	} else {
		__be32 v4;
		int i;

		if (!in4_pton(s, alen, (u8 *)&v4, -1, &end) ||
		    end != s + alen)
			return -EINVAL;
		/* 010.0.0.1 is 8.0.0.1 to inet_aton(): refuse it, as inet_pton(). */
		for (i = 0; i + 1 < alen; i++)
			if (s[i] == '0' && (!i || s[i - 1] == '.') &&
			    isdigit(s[i + 1]))
				return -EINVAL;
		ipv6_addr_set_v4mapped(v4, &p->addr);
		p->v4 = true;
		max = 32;
	}
	plen = max;
	if (slash && (!isdigit(slash[1]) || kstrtou8(slash + 1, 10, &plen) ||
		      plen > max))
		return -EINVAL;
	p->plen = plen + 128 - max;
	ipv6_addr_prefix(&masked, &p->addr, p->plen);
	if (!ipv6_addr_equal(&masked, &p->addr))
		return -EINVAL;
	return 0;
}

/*
 * A write replaces the whole list: prefixes separated by white space, all
 * of them valid or nothing changes.  An empty write empties the list.
 */
static int toa_allow_write(struct toa_net *tn, const char *buffer,
			   size_t *lenp, loff_t *ppos)
{
	struct toa_allow *new, *old;
	struct toa_prefix p;
	char *buf, *s, *tok;
	unsigned int i;
	int err = 0;

	/* A list continued by a second write would change in two steps. */
	if (*ppos)
		return -EINVAL;
	buf = kmemdup_nul(buffer, *lenp, GFP_KERNEL);
	new = kzalloc(struct_size(new, p, TOA_ALLOW_MAX), GFP_KERNEL);
	if (!buf || !new) {
		err = -ENOMEM;
		goto out;
	}
	s = buf;
	while ((tok = strsep(&s, " \t\n"))) {
		if (!*tok)
			continue;
		err = toa_parse_prefix(tok, &p);
		if (err)
			goto out;
		for (i = 0; i < new->n; i++)
			if (new->p[i].plen == p.plen &&
			    ipv6_addr_equal(&new->p[i].addr, &p.addr))
				break;
		if (i < new->n)
			continue;
		if (new->n == TOA_ALLOW_MAX) {
			err = -E2BIG;
			goto out;
		}
		new->p[new->n++] = p;
	}
	if (!new->n) {
		kfree(new);
		new = NULL;
	}
	mutex_lock(&tn->allow_lock);
	old = rcu_replace_pointer(tn->allow, new,
				  lockdep_is_held(&tn->allow_lock));
	mutex_unlock(&tn->allow_lock);
	new = NULL;
	if (old)
		kfree_rcu(old, rcu);
	*ppos += *lenp;
out:
	kfree(new);
	kfree(buf);
	return err;
}

#define TOA_ALLOW_STRLEN	(TOA_ALLOW_MAX * (INET6_ADDRSTRLEN + 5) + 1)

/* The list as written, canonical: a.b.c.d/n and compressed IPv6. */
static int toa_allow_read(struct toa_net *tn, void *buffer, size_t *lenp,
			  loff_t *ppos)
{
	struct ctl_table tmp = { .maxlen = TOA_ALLOW_STRLEN };
	const struct toa_allow *a;
	const struct toa_prefix *p;
	unsigned int i;
	size_t len = 0;
	char *str;
	int err;

	str = kzalloc(TOA_ALLOW_STRLEN, GFP_KERNEL);
	if (!str)
		return -ENOMEM;
	rcu_read_lock();
	a = rcu_dereference(tn->allow);
	for (i = 0; a && i < a->n; i++) {
		p = &a->p[i];
		if (p->v4)
			len += scnprintf(str + len, TOA_ALLOW_STRLEN - len,
					 "%s%pI4/%u", i ? " " : "",
					 &p->addr.s6_addr32[3], p->plen - 96);
		else
			len += scnprintf(str + len, TOA_ALLOW_STRLEN - len,
					 "%s%pI6c/%u", i ? " " : "",
					 &p->addr, p->plen);
	}
	rcu_read_unlock();
	tmp.data = str;
	err = proc_dostring(&tmp, 0, buffer, lenp, ppos);
	kfree(str);
	return err;
}

static int toa_allow_sysctl(IP_VS_CTL_CONST struct ctl_table *table, int write,
			    void *buffer, size_t *lenp, loff_t *ppos)
{
	struct toa_net *tn = table->data;

	if (write)
		return toa_allow_write(tn, buffer, lenp, ppos);
	return toa_allow_read(tn, buffer, lenp, ppos);
}

/*
 * Per namespace; the kernel's net sysctl root gives its owner's rights to
 * whoever has CAP_NET_ADMIN in the namespace's user namespace.
 */
static struct ctl_table toa_sysctl_template[] = {
	{
		.procname	= "allow",
		.mode		= 0644,
		.proc_handler	= toa_allow_sysctl,
	},
	{ }
};

static int toa_sysctl_register(struct net *net, struct toa_net *tn)
{
	struct ctl_table *tbl;

	tbl = kmemdup(toa_sysctl_template, sizeof(toa_sysctl_template),
		      GFP_KERNEL);
	if (!tbl)
		return -ENOMEM;
	tbl[0].data = tn;
	tn->sysctl_hdr = ip_vs_register_net_sysctl(net, "net/toa", tbl,
						   ARRAY_SIZE(toa_sysctl_template) - 1);
	if (!tn->sysctl_hdr) {
		kfree(tbl);
		return -ENOMEM;
	}
	tn->sysctl_tbl = tbl;
	return 0;
}

static int __net_init toa_net_init(struct net *net)
{
	struct toa_net *tn = net_generic(net, toa_net_id);
	int err;

	mutex_init(&tn->allow_lock);
	RCU_INIT_POINTER(tn->allow, NULL);
	tn->stats = alloc_percpu(struct toa_stats);
	if (!tn->stats)
		return -ENOMEM;
	err = toa_sysctl_register(net, tn);
	if (err)
		goto out_stats;
	if (!proc_create_net_single("toa_stats", 0444, net->proc_net,
				    toa_stats_show, NULL)) {
		err = -ENOMEM;
		goto out_sysctl;
	}
	return 0;

out_sysctl:
	unregister_net_sysctl_table(tn->sysctl_hdr);
	kfree(tn->sysctl_tbl);
out_stats:
	free_percpu(tn->stats);
	tn->stats = NULL;
	return err;
}

static void __net_exit toa_net_exit(struct net *net)
{
	struct toa_net *tn = net_generic(net, toa_net_id);
	struct toa_allow *a;

	remove_proc_entry("toa_stats", net->proc_net);
	/* Waits for writers and readers of the sysctl. */
	unregister_net_sysctl_table(tn->sysctl_hdr);
	kfree(tn->sysctl_tbl);
	a = rcu_replace_pointer(tn->allow, NULL, true);
	if (a)
		kfree_rcu(a, rcu);
	free_percpu(tn->stats);
	tn->stats = NULL;
}

static struct pernet_operations toa_net_ops = {
	.init	= toa_net_init,
	.exit	= toa_net_exit,
	.id	= &toa_net_id,
	.size	= sizeof(struct toa_net),
};

/* ---- module ------------------------------------------------------------ */

static void toa_free_table(void)
{
	struct toa_entry *e;
	struct hlist_node *n;
	unsigned int i;

	for (i = 0; i < (1U << TOA_HASH_BITS); i++) {
		hlist_for_each_entry_safe(e, n, &toa_table[i].head, node) {
			hlist_del(&e->node);
			kfree(e);
		}
	}
	kvfree(toa_table);
	toa_table = NULL;
}

static int __init toa_init(void)
{
	unsigned int i;
	int maxactive;
	int err;

	toa_table = kvcalloc(1U << TOA_HASH_BITS, sizeof(*toa_table),
			     GFP_KERNEL);
	if (!toa_table)
		return -ENOMEM;
	for (i = 0; i < (1U << TOA_HASH_BITS); i++) {
		spin_lock_init(&toa_table[i].lock);
		INIT_HLIST_HEAD(&toa_table[i].head);
	}

	err = register_pernet_subsys(&toa_net_ops);
	if (err)
		goto out_table;

	/*
	 * An instance is taken per call in flight: syn_recv_sock runs in
	 * softirq, getname may sleep in lock_sock() but takes an instance
	 * only for sockets that carry a TOA.
	 */
	maxactive = max_t(int, 64, 8 * num_possible_cpus());
	for (i = 0; i < ARRAY_SIZE(toa_kretprobes); i++)
		toa_kretprobes[i]->maxactive = maxactive;

	err = register_kprobe(&toa_destroy_probe);
	if (err) {
		pr_err("cannot probe %s: %d\n", toa_destroy_probe.symbol_name,
		       err);
		goto out_pernet;
	}
	for (i = 0; i < ARRAY_SIZE(toa_kretprobes); i++) {
		err = register_kretprobe(toa_kretprobes[i]);
		if (err) {
			pr_err("cannot probe %s: %d\n",
			       toa_kretprobes[i]->kp.symbol_name, err);
			goto out_probes;
		}
	}
	pr_info("loaded: TOA kinds 254/8, 253/20, 254/20\n");
	return 0;

out_probes:
	if (i)
		unregister_kretprobes(toa_kretprobes, i);
	unregister_kprobe(&toa_destroy_probe);
out_pernet:
	unregister_pernet_subsys(&toa_net_ops);
out_table:
	toa_free_table();
	return err;
}

static void __exit toa_exit(void)
{
	unsigned long missed = 0;
	unsigned int i;

	/* Returns once no handler runs and none will run again. */
	unregister_kretprobes(toa_kretprobes, ARRAY_SIZE(toa_kretprobes));
	unregister_kprobe(&toa_destroy_probe);

	for (i = 0; i < ARRAY_SIZE(toa_kretprobes); i++)
		missed += toa_kretprobes[i]->nmissed +
			  toa_kretprobes[i]->kp.nmissed;
	missed += toa_destroy_probe.nmissed;
	if (missed)
		pr_info("%lu probe hits were missed\n", missed);

	unregister_pernet_subsys(&toa_net_ops);
	/* Entries are freed with kfree_rcu() while the probes run. */
	synchronize_rcu();
	toa_free_table();
	pr_info("unloaded\n");
}

module_init(toa_init);
module_exit(toa_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TCP Option Address: FULLNAT client for getpeername() and accept()");
MODULE_AUTHOR("fullnat project");
MODULE_VERSION("0.3");
