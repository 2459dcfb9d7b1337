// SPDX-License-Identifier: GPL-2.0-only
/*
 * IPVS FULLNAT local addresses: the per-service pools, local port allocation,
 * the out-direction connection table keyed by (laddr, lport, rip, rport), the
 * LADDR generic netlink commands and /proc/net/ip_vs_conn_fnat.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/bitmap.h>
#include <linux/jhash.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/seq_file.h>
#include <linux/proc_fs.h>
#include <net/ip_vs_compat.h>
#include <linux/icmpv6.h>
#include <net/addrconf.h>
#include <net/genetlink.h>
#include <net/icmp.h>
#include <net/route.h>
#include <net/netfilter/ipv4/nf_reject.h>
#include <net/netfilter/ipv6/nf_reject.h>
#include <net/netns/generic.h>
#include <net/ip_vs.h>

#define IP_VS_FNAT_TAB_MIN	BIT(14)
#define IP_VS_FNAT_LOCKS	256

/* Out-direction table: every FULLNAT connection of every namespace by its
 * RS-side tuple (the namespace is in the hash, as in the connection table).
 * It has as many buckets as the connection table (conn_tab_bits), and at
 * least IP_VS_FNAT_TAB_MIN: one knob sizes both for a million connections.
 * The first namespace allocates it, the last one frees it.
 */
static struct hlist_head *ip_vs_fnat_tab __read_mostly;
static unsigned int ip_vs_fnat_tab_mask __read_mostly;
static unsigned int ip_vs_fnat_tab_users;
static DEFINE_MUTEX(ip_vs_fnat_tab_mutex);
static spinlock_t ip_vs_fnat_locks[IP_VS_FNAT_LOCKS] = {
	[0 ... IP_VS_FNAT_LOCKS - 1] = __SPIN_LOCK_UNLOCKED(ip_vs_fnat_locks),
};

static u32 ip_vs_fnat_rnd __read_mostly;

/* Local-port pools of all namespaces: only when there is one can a packet
 * be a FULLNAT reply. Written when a local address comes or goes, never per
 * connection, so the per-packet read stays in every CPU's cache.
 */
static atomic_t ip_vs_lport_npools = ATOMIC_INIT(0);

static u32 ip_vs_fnat_addr_fold(int af, const union nf_inet_addr *a)
{
#ifdef CONFIG_IP_VS_IPV6
	if (af == AF_INET6)
		return (__force u32)(a->ip6[0] ^ a->ip6[1] ^ a->ip6[2] ^
				     a->ip6[3]);
#endif
	return (__force u32)a->ip;
}

static unsigned int ip_vs_fnat_hash(struct netns_ipvs *ipvs, int af, u16 proto,
				    const union nf_inet_addr *laddr,
				    __be16 lport,
				    const union nf_inet_addr *raddr,
				    __be16 rport)
{
	u32 ports = ((__force u32)lport << 16) | (__force u32)rport;

	return jhash_3words(ip_vs_fnat_addr_fold(af, laddr),
			    ip_vs_fnat_addr_fold(af, raddr),
			    ports ^ proto,
			    ip_vs_fnat_rnd ^ net_hash_mix(ipvs->net)) &
	       ip_vs_fnat_tab_mask;
}

static inline spinlock_t *ip_vs_fnat_lock(unsigned int hash)
{
	return &ip_vs_fnat_locks[hash & (IP_VS_FNAT_LOCKS - 1)];
}

/* Lookup for packets from the real server: p->caddr/cport is the source
 * (rip, rport), p->vaddr/vport the destination (laddr, lport).
 */
struct ip_vs_conn *ip_vs_fnat_out_get(const struct ip_vs_conn_param *p)
{
	struct ip_vs_conn *cp;
	unsigned int hash;

	/* most packets here are not IPVS replies at all */
	if (!atomic_read(&ip_vs_lport_npools))
		return NULL;
	hash = ip_vs_fnat_hash(p->ipvs, p->af, p->protocol, p->vaddr, p->vport,
			       p->caddr, p->cport);
	rcu_read_lock();
	hlist_for_each_entry_rcu(cp, &ip_vs_fnat_tab[hash], fnat.o_list) {
		if (cp->fnat.lport == p->vport && cp->dport == p->cport &&
		    cp->af == p->af && cp->protocol == p->protocol &&
		    cp->ipvs == p->ipvs &&
		    ip_vs_addr_equal(p->af, &cp->fnat.lip, p->vaddr) &&
		    ip_vs_addr_equal(p->af, &cp->daddr, p->caddr) &&
		    (READ_ONCE(cp->flags) & IP_VS_CONN_F_HASHED) &&
		    __ip_vs_conn_get(cp)) {
			rcu_read_unlock();
			return cp;
		}
	}
	rcu_read_unlock();
	return NULL;
}

/* Local ports.
 *
 * A local address's ports are a bitmap per namespace and protocol (TCP, UDP),
 * shared by every service that has the address: a set bit is a port held by
 * a connection, to whichever real server. A new connection takes the first
 * free port at or after a random point of the range (RFC 6056's simple
 * random selection, with the next free one instead of a new draw), wrapping
 * once; find_next_zero_bit() reads one word per BITS_PER_LONG ports, so the
 * search costs at most range / BITS_PER_LONG word reads and finds a free port
 * whenever one exists. test_and_set_bit() claims it without a lock (a lost
 * race moves on to the next free bit); the connection remembers the port and
 * clears its bit when it goes.
 *
 * A port is not re-used towards a second real server while a connection
 * holds it: one address serves at most (fullnat_lport_max -
 * fullnat_lport_min + 1) connections per protocol at a time, as in DPVS's
 * per-address pools; give a service more local addresses for more. In
 * return no connection table is probed to allocate, and the out-direction
 * table needs no busy check: a port whose bit we set is nobody else's.
 *
 * The bitmap covers all 65536 ports (8 KiB per protocol), so changing the
 * range sysctls while connections hold ports only changes where the next
 * search looks.
 */
#define IP_VS_LPORTS		65536
#define IP_VS_LPORT_PROTOS	2	/* TCP, UDP */

struct ip_vs_lport_pool {
	struct list_head	list;		/* ip_vs_lport_pools */
	struct netns_ipvs	*ipvs;
	int			af;
	union nf_inet_addr	addr;
	refcount_t		refcnt;		/* local address entries */
	unsigned long		*map;		/* IP_VS_LPORT_PROTOS maps */
};

/* Every pool of every namespace; only the control plane searches it (under
 * the service mutex), the last ip_vs_laddr_put() may unlink from softirq.
 */
static LIST_HEAD(ip_vs_lport_pools);
static DEFINE_SPINLOCK(ip_vs_lport_pools_lock);

/* Writers of every namespace's sync_laddrs (below) */
static DEFINE_MUTEX(ip_vs_laddr_sync_lock);

static struct ip_vs_lport_pool *ip_vs_lport_pool_get(struct netns_ipvs *ipvs,
						     int af,
						     const union nf_inet_addr *a)
{
	struct ip_vs_lport_pool *pool;

	lockdep_assert_held(ip_vs_service_mutex(ipvs));
	spin_lock_bh(&ip_vs_lport_pools_lock);
	list_for_each_entry(pool, &ip_vs_lport_pools, list) {
		if (pool->ipvs == ipvs && pool->af == af &&
		    ip_vs_addr_equal(af, &pool->addr, a) &&
		    refcount_inc_not_zero(&pool->refcnt)) {
			spin_unlock_bh(&ip_vs_lport_pools_lock);
			return pool;
		}
	}
	spin_unlock_bh(&ip_vs_lport_pools_lock);

	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool)
		return NULL;
	pool->map = bitmap_zalloc(IP_VS_LPORT_PROTOS * IP_VS_LPORTS,
				  GFP_KERNEL);
	if (!pool->map) {
		kfree(pool);
		return NULL;
	}
	pool->ipvs = ipvs;
	pool->af = af;
	ip_vs_addr_copy(af, &pool->addr, a);
	refcount_set(&pool->refcnt, 1);
	spin_lock_bh(&ip_vs_lport_pools_lock);
	list_add(&pool->list, &ip_vs_lport_pools);
	spin_unlock_bh(&ip_vs_lport_pools_lock);
	atomic_inc(&ip_vs_lport_npools);
	return pool;
}

static void ip_vs_lport_pool_put(struct ip_vs_lport_pool *pool)
{
	if (!refcount_dec_and_test(&pool->refcnt))
		return;
	/* a lookup that finds it now skips it (refcount 0) */
	spin_lock_bh(&ip_vs_lport_pools_lock);
	list_del(&pool->list);
	spin_unlock_bh(&ip_vs_lport_pools_lock);
	atomic_dec(&ip_vs_lport_npools);
	bitmap_free(pool->map);
	kfree(pool);
}

static unsigned long *ip_vs_lport_map(struct ip_vs_lport_pool *pool,
				      u16 protocol)
{
	return pool->map + (protocol == IPPROTO_UDP) *
			   BITS_TO_LONGS(IP_VS_LPORTS);
}

/* Claim a free port of [min, min + range) in map; -1 when there is none. */
static int ip_vs_lport_claim(unsigned long *map, unsigned int min,
			     unsigned int range)
{
	unsigned int start = min + get_random_u32_below(range);
	unsigned int end = min + range;
	unsigned int lo = start, hi = end;
	unsigned long port;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		port = lo;
		while ((port = find_next_zero_bit(map, hi, port)) < hi) {
			if (!test_and_set_bit(port, map))
				return port;
			port++;		/* lost a race for it */
		}
		lo = min;
		hi = start;
	}
	return -1;
}

static void ip_vs_laddr_put(struct ip_vs_laddr *la)
{
	if (refcount_dec_and_test(&la->refcnt)) {
		ip_vs_lport_pool_put(la->pool);
		kfree_rcu(la, rcu_head);
	}
}

static void ip_vs_fnat_conn_hold(struct ip_vs_conn *cp, struct ip_vs_laddr *la,
				 __be16 port);

/* Take a port of one local address for cp; 0 when one was taken. */
static int ip_vs_fnat_try_laddr(struct ip_vs_conn *cp, struct ip_vs_laddr *la,
				unsigned int min, unsigned int range)
{
	int port;

	port = ip_vs_lport_claim(ip_vs_lport_map(la->pool, cp->protocol),
				 min, range);
	if (port < 0) {
		atomic64_inc(&la->port_conflict);
		return -EADDRINUSE;
	}
	ip_vs_fnat_conn_hold(cp, la, htons(port));
	return 0;
}

/* cp holds port (its bit set) of la, and a reference on la: bind it and
 * hash it in the out-direction table.
 */
static void ip_vs_fnat_conn_hold(struct ip_vs_conn *cp, struct ip_vs_laddr *la,
				 __be16 port)
{
	unsigned int hash;
	spinlock_t *lock;	/* of the bucket */

	ip_vs_addr_copy(cp->af, &cp->fnat.lip, &la->addr);
	cp->fnat.lport = port;
	cp->fnat.laddr = la;
	atomic_inc(&la->conn_counts);
	if (cp->flags & IP_VS_CONN_F_ONE_PACKET)
		return;
	/* the port is ours: no other entry has (laddr, lport) in this table */
	hash = ip_vs_fnat_hash(cp->ipvs, cp->af, cp->protocol, &la->addr,
			       cp->fnat.lport, &cp->daddr, cp->dport);
	lock = ip_vs_fnat_lock(hash);
	spin_lock_bh(lock);
	cp->fnat.flags |= IP_VS_FNAT_F_HASHED;
	hlist_add_head_rcu(&cp->fnat.o_list, &ip_vs_fnat_tab[hash]);
	spin_unlock_bh(lock);
}

/* The local port range of the fullnat_lport_min/max sysctls, in order */
static void ip_vs_fnat_lport_range(struct ip_vs_fnat_net *fn, int *min,
				   int *max)
{
	*min = READ_ONCE(fn->sysctl_lport_min);
	*max = READ_ONCE(fn->sysctl_lport_max);
	if (*min > *max)
		swap(*min, *max);
	*min = clamp(*min, 1, IP_VS_LPORTS - 1);
	*max = clamp(*max, *min, IP_VS_LPORTS - 1);
}

/* Would a new connection of this protocol find no local port on svc? True
 * for a FULLNAT service without local addresses, or whose local addresses
 * have no free port. Called under RCU.
 */
static bool ip_vs_fnat_svc_full(struct ip_vs_service *svc, u16 protocol)
{
	struct ip_vs_fnat_net *fn = svc->ipvs->fnat;
	struct ip_vs_dest *dest;
	struct ip_vs_laddr *la;
	bool fullnat = false;
	int min, max;

	list_for_each_entry_rcu(dest, &svc->destinations, n_list) {
		if (IP_VS_DFWD_METHOD(dest) == IP_VS_CONN_F_FULLNAT) {
			fullnat = true;
			break;
		}
	}
	if (!fullnat)
		return false;
	ip_vs_fnat_lport_range(fn, &min, &max);
	list_for_each_entry_rcu(la, &svc->fnat.laddrs, n_list) {
		if (find_next_zero_bit(ip_vs_lport_map(la->pool, protocol),
				       max + 1, min) <= max)
			return false;
	}
	return true;
}

/* Tell the client of skb (af, protocol) that it gets no connection: a TCP
 * RST, or for UDP the ICMP port unreachable that ip_vs_leave() sends when no
 * real server is available.  Shared with SYNPROXY.
 */
void ip_vs_refuse_client(struct netns_ipvs *ipvs, int af, u16 protocol,
			 struct sk_buff *skb)
{
	struct net *net = ipvs->net;
	int hook = skb->dev ? NF_INET_LOCAL_IN : NF_INET_LOCAL_OUT;

#ifdef CONFIG_IP_VS_IPV6
	if (af == AF_INET6) {
		if (protocol == IPPROTO_TCP) {
			nf_send_reset6(net, NULL, skb, hook);
		} else {
			if (!skb->dev)
				skb->dev = net->loopback_dev;
			icmpv6_send(skb, ICMPV6_DEST_UNREACH,
				    ICMPV6_PORT_UNREACH, 0);
		}
		return;
	}
#endif
	if (protocol == IPPROTO_TCP)
		nf_send_reset(net, NULL, skb, hook);
	else
		icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0);
}

/* ip_vs_schedule() could not create a connection for skb (tcp_conn_schedule
 * and udp_conn_schedule, ignored == -1). When that is because the FULLNAT
 * service has no free local port (or no local address), tell the client
 * instead of leaving it to retry into a full table. The packet is dropped
 * either way.
 */
int ip_vs_fnat_refuse(struct ip_vs_service *svc, struct sk_buff *skb,
		      struct ip_vs_iphdr *iph)
{
	if (iph->fragoffs || ip_vs_iph_icmp(iph) ||
	    (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP) ||
	    !ip_vs_fnat_svc_full(svc, iph->protocol))
		return NF_DROP;
	ip_vs_refuse_client(svc->ipvs, svc->af, iph->protocol, skb);
	return NF_DROP;
}

static void ip_vs_fnat_refuse_log(const struct ip_vs_conn *cp,
				  const char *what,
				  const union nf_inet_addr *addr, __be16 port)
{
	if (!net_ratelimit())
		return;
	if (cp->af == AF_INET6)
		pr_err("FULLNAT: connection refused: %s %s [%pI6c]:%u\n", what,
		       ip_vs_proto_name(cp->protocol), &addr->in6, ntohs(port));
	else
		pr_err("FULLNAT: connection refused: %s %s %pI4:%u\n", what,
		       ip_vs_proto_name(cp->protocol), &addr->ip, ntohs(port));
}

/* Bind a new FULLNAT connection to a local address and port: round-robin
 * over the service's local addresses, falling through to the next one when
 * an address has no free port. fullnat_lport_tries is not used any more:
 * the search of one address is bounded by its range.
 */
int ip_vs_fnat_conn_bind(struct ip_vs_conn *cp, struct ip_vs_service *svc)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_fnat_net *fn = ipvs->fnat;
	unsigned int n, start, i;
	struct ip_vs_laddr *la;
	int min, max, pass;

	if (!svc || cp->daf != cp->af ||
	    (cp->protocol != IPPROTO_TCP && cp->protocol != IPPROTO_UDP))
		goto no_laddr;
	n = READ_ONCE(svc->fnat.num_laddrs);
	if (!n)
		goto no_laddr;

	ip_vs_fnat_lport_range(fn, &min, &max);

	start = (u32)atomic_inc_return(&svc->fnat.next_laddr) % n;
	/* two passes: from the round-robin position to the end, then the
	 * addresses before it
	 */
	for (pass = 0; pass < 2; pass++) {
		i = 0;
		list_for_each_entry_rcu(la, &svc->fnat.laddrs, n_list) {
			bool mine = pass ? i < start : i >= start;

			i++;
			if (!mine)
				continue;
			if (!refcount_inc_not_zero(&la->refcnt))
				continue;
			if (!ip_vs_fnat_try_laddr(cp, la, min, max - min + 1)) {
				ip_vs_pp_conn_init(cp, svc);
				return 0;
			}
			ip_vs_laddr_put(la);
		}
	}
	IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_LPORT_EXHAUSTED);
	ip_vs_fnat_refuse_log(cp, "no free local port towards", &cp->daddr,
			      cp->dport);
	return -EADDRINUSE;

no_laddr:
	IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_NO_LADDR);
	ip_vs_fnat_refuse_log(cp, "no local address for", &cp->vaddr,
			      cp->vport);
	return -ENOENT;
}

void ip_vs_fnat_conn_unbind(struct ip_vs_conn *cp)
{
	struct ip_vs_laddr *la;
	unsigned int hash;
	spinlock_t *lock;	/* of the bucket */

	if (!ip_vs_fnat_has_state(cp))
		return;
	la = cp->fnat.laddr;
	if (!la)
		return;
	if (cp->fnat.flags & IP_VS_FNAT_F_HASHED) {
		hash = ip_vs_fnat_hash(cp->ipvs, cp->af, cp->protocol,
				       &cp->fnat.lip, cp->fnat.lport,
				       &cp->daddr, cp->dport);
		lock = ip_vs_fnat_lock(hash);
		spin_lock_bh(lock);
		hlist_del_rcu(&cp->fnat.o_list);
		spin_unlock_bh(lock);
		spin_lock_bh(&cp->lock);
		cp->fnat.flags &= ~IP_VS_FNAT_F_HASHED;
		spin_unlock_bh(&cp->lock);
	}
	/* after the entry left the table: the next owner may insert its own */
	clear_bit_unlock(ntohs(cp->fnat.lport),
			 ip_vs_lport_map(la->pool, cp->protocol));
	cp->fnat.laddr = NULL;
	atomic_dec(&la->conn_counts);
	ip_vs_laddr_put(la);
}

/* Called with the service mutex held when the service goes away. */
void ip_vs_laddr_flush(struct ip_vs_service *svc)
{
	struct ip_vs_laddr *la, *nxt;

	if (!svc->fnat.laddrs.next)
		return;
	list_for_each_entry_safe(la, nxt, &svc->fnat.laddrs, n_list) {
		list_del_rcu(&la->n_list);
		svc->fnat.num_laddrs--;
		ip_vs_laddr_put(la);
	}
}

/* Local addresses of synced connections.
 *
 * A backup creates a FULLNAT connection that a peer syncs to it with the
 * peer's local address and port (kmod/CLUSTER.md): the address is the
 * peer's, not one of this director's services'. Each such address gets an
 * entry of its own in the namespace's sync_laddrs list, which holds the
 * port pool of the address in this namespace: the same pool as a service's
 * local address of that address, if there is one, so that a port a synced
 * connection holds is never given to a new connection here (after this
 * director took the address over, say). An entry lives as long as the
 * namespace: there are as many as the peers have local addresses.
 */
static struct ip_vs_laddr *ip_vs_laddr_sync_find(struct ip_vs_fnat_net *fn,
						 int af,
						 const union nf_inet_addr *a)
{
	struct ip_vs_laddr *la;

	list_for_each_entry_rcu(la, &fn->sync_laddrs, n_list,
				lockdep_is_held(&ip_vs_laddr_sync_lock))
		if (la->af == af && ip_vs_addr_equal(af, &la->addr, a))
			return la;
	return NULL;
}

/* Make sure that the sync entry of addr exists. Process context: the sync
 * thread, before it creates the connection under RCU.
 */
int ip_vs_laddr_sync_prepare(struct netns_ipvs *ipvs, int af,
			     const union nf_inet_addr *addr)
{
	struct ip_vs_fnat_net *fn = ipvs->fnat;
	struct ip_vs_laddr *la;
	bool found;
	int ret = 0;

	rcu_read_lock();
	found = ip_vs_laddr_sync_find(fn, af, addr);
	rcu_read_unlock();
	if (found)
		return 0;

	mutex_lock(ip_vs_service_mutex(ipvs));
	mutex_lock(&ip_vs_laddr_sync_lock);
	if (ip_vs_laddr_sync_find(fn, af, addr))
		goto out;
	ret = -ENOMEM;
	la = kzalloc(sizeof(*la), GFP_KERNEL);
	if (!la)
		goto out;
	la->pool = ip_vs_lport_pool_get(ipvs, af, addr);
	if (!la->pool) {
		kfree(la);
		goto out;
	}
	la->af = af;
	ip_vs_addr_copy(af, &la->addr, addr);
	refcount_set(&la->refcnt, 1);
	list_add_tail_rcu(&la->n_list, &fn->sync_laddrs);
	ret = 0;
out:
	mutex_unlock(&ip_vs_laddr_sync_lock);
	mutex_unlock(ip_vs_service_mutex(ipvs));
	return ret;
}

/* Bind a synced connection to the local address and port that its owner
 * gave it. Under RCU; the entry of lip exists (ip_vs_laddr_sync_prepare()).
 * -EADDRINUSE when a connection here holds the port: a stale copy of an
 * older connection, which the next sync of this one replaces once it has
 * gone.
 */
int ip_vs_fnat_conn_bind_synced(struct ip_vs_conn *cp,
				const union nf_inet_addr *lip, __be16 lport)
{
	struct ip_vs_laddr *la;

	if (cp->protocol != IPPROTO_TCP && cp->protocol != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	la = ip_vs_laddr_sync_find(cp->ipvs->fnat, cp->af, lip);
	if (!la || !refcount_inc_not_zero(&la->refcnt))
		return -ENOENT;
	if (!lport || test_and_set_bit(ntohs(lport),
				       ip_vs_lport_map(la->pool,
						       cp->protocol))) {
		atomic64_inc(&la->port_conflict);
		ip_vs_laddr_put(la);
		return -EADDRINUSE;
	}
	ip_vs_fnat_conn_hold(cp, la, lport);
	return 0;
}

/* The namespace goes: its connections have gone, and with them their
 * references on the entries.
 */
void ip_vs_laddr_sync_flush(struct netns_ipvs *ipvs)
{
	struct ip_vs_laddr *la, *nxt;

	mutex_lock(&ip_vs_laddr_sync_lock);
	list_for_each_entry_safe(la, nxt, &ipvs->fnat->sync_laddrs, n_list) {
		list_del_rcu(&la->n_list);
		ip_vs_laddr_put(la);
	}
	mutex_unlock(&ip_vs_laddr_sync_lock);
}

static const struct nla_policy ip_vs_laddr_policy[IPVS_LADDR_ATTR_MAX + 1] = {
	[IPVS_LADDR_ATTR_ADDR]		= NLA_POLICY_MIN_LEN(sizeof(struct in_addr)),
	[IPVS_LADDR_ATTR_PORT_CONFLICT]	= { .type = NLA_U64 },
	[IPVS_LADDR_ATTR_CONN_COUNTS]	= { .type = NLA_U32 },
};

/* Parse the LADDR nest of a request into an address of the service's family:
 * 4 bytes, or 16 bytes (union nf_inet_addr) for either family.
 */
static int ip_vs_genl_parse_laddr(struct genl_info *info, int af,
				  union nf_inet_addr *addr)
{
	struct nlattr *attrs[IPVS_LADDR_ATTR_MAX + 1];
	struct nlattr *nla = info->attrs[IPVS_CMD_ATTR_LADDR];
	const u8 *b;
	int len, i, ret;

	if (!nla) {
		GENL_SET_ERR_MSG(info, "missing local address");
		return -EINVAL;
	}
	ret = nla_parse_nested(attrs, IPVS_LADDR_ATTR_MAX, nla,
			       ip_vs_laddr_policy, info->extack);
	if (ret)
		return ret;
	if (!attrs[IPVS_LADDR_ATTR_ADDR]) {
		GENL_SET_ERR_MSG(info, "missing local address");
		return -EINVAL;
	}
	len = nla_len(attrs[IPVS_LADDR_ATTR_ADDR]);
	b = nla_data(attrs[IPVS_LADDR_ATTR_ADDR]);
	if (len != sizeof(struct in_addr) && len != sizeof(*addr)) {
		GENL_SET_ERR_MSG(info, "local address must be 4 or 16 bytes");
		return -EINVAL;
	}
	memset(addr, 0, sizeof(*addr));
	if (af == AF_INET) {
		for (i = sizeof(struct in_addr); i < len; i++)
			if (b[i])
				goto wrong_family;
		memcpy(&addr->ip, b, sizeof(addr->ip));
		if (ipv4_is_zeronet(addr->ip) || ipv4_is_multicast(addr->ip) ||
		    ipv4_is_lbcast(addr->ip))
			goto bad_addr;
		return 0;
	}
	if (len != sizeof(struct in6_addr))
		goto wrong_family;
	memcpy(&addr->in6, b, sizeof(addr->in6));
	if (ipv6_addr_any(&addr->in6) || ipv6_addr_is_multicast(&addr->in6) ||
	    ipv6_addr_v4mapped(&addr->in6))
		goto bad_addr;
	return 0;

wrong_family:
	GENL_SET_ERR_MSG(info, "local address family differs from the service's");
	return -EAFNOSUPPORT;
bad_addr:
	GENL_SET_ERR_MSG(info, "local address must be a unicast address");
	return -EINVAL;
}

static struct ip_vs_laddr *ip_vs_laddr_find(struct ip_vs_service *svc,
					    const union nf_inet_addr *addr)
{
	struct ip_vs_laddr *la;

	list_for_each_entry(la, &svc->fnat.laddrs, n_list)
		if (ip_vs_addr_equal(svc->af, &la->addr, addr))
			return la;
	return NULL;
}

/* An address configured on the director (tentative IPv6 ones included:
 * they become usable once DAD is done).
 */
static bool ip_vs_laddr_is_local(struct net *net, int af,
				 const union nf_inet_addr *a)
{
#ifdef CONFIG_IP_VS_IPV6
	if (af == AF_INET6)
		return ipv6_chk_addr_and_flags(net, &a->in6, NULL, true, 0,
					       IFA_F_DADFAILED);
#endif
	return inet_addr_type(net, a->ip) == RTN_LOCAL;
}

/* Never 0, which the dumps' consistency check takes as unset */
void ip_vs_fnat_table_changed(struct netns_ipvs *ipvs)
{
	unsigned int gen = ipvs->fnat->table_gen + 1;

	WRITE_ONCE(ipvs->fnat->table_gen, gen ? gen : 1);
}

unsigned int ip_vs_fnat_table_gen(struct netns_ipvs *ipvs)
{
	return READ_ONCE(ipvs->fnat->table_gen);
}

static int ip_vs_genl_laddr_cmd(struct sk_buff *skb, struct genl_info *info,
				bool add)
{
	struct netns_ipvs *ipvs = net_ipvs(sock_net(skb->sk));
	struct ip_vs_service *svc;
	union nf_inet_addr addr;
	struct ip_vs_laddr *la;
	int ret;

	if (!info->attrs[IPVS_CMD_ATTR_SERVICE]) {
		GENL_SET_ERR_MSG(info, "missing service");
		return -EINVAL;
	}
	mutex_lock(ip_vs_service_mutex(ipvs));
	svc = ip_vs_genl_find_service(ipvs, info->attrs[IPVS_CMD_ATTR_SERVICE]);
	if (IS_ERR(svc)) {
		ret = PTR_ERR(svc);
		goto out;
	}
	if (!svc) {
		ret = -ESRCH;
		goto out;
	}
	ret = ip_vs_genl_parse_laddr(info, svc->af, &addr);
	if (ret)
		goto out;
	la = ip_vs_laddr_find(svc, &addr);
	if (!add) {
		if (!la) {
			ret = -ENOENT;
			goto out;
		}
		list_del_rcu(&la->n_list);
		svc->fnat.num_laddrs--;
		ip_vs_laddr_put(la);
		goto out;
	}
	if (la) {
		ret = -EEXIST;
		goto out;
	}
	/* replies from the real servers come back to it: an address the
	 * director does not have would black-hole every connection
	 */
	if (!ip_vs_laddr_is_local(ipvs->net, svc->af, &addr)) {
		GENL_SET_ERR_MSG(info,
				 "local address is not an address of the director in this namespace");
		ret = -EADDRNOTAVAIL;
		goto out;
	}
	la = kzalloc(sizeof(*la), GFP_KERNEL);
	if (!la) {
		ret = -ENOMEM;
		goto out;
	}
	la->pool = ip_vs_lport_pool_get(ipvs, svc->af, &addr);
	if (!la->pool) {
		kfree(la);
		ret = -ENOMEM;
		goto out;
	}
	la->af = svc->af;
	ip_vs_addr_copy(svc->af, &la->addr, &addr);
	refcount_set(&la->refcnt, 1);
	list_add_tail_rcu(&la->n_list, &svc->fnat.laddrs);
	svc->fnat.num_laddrs++;
out:
	ip_vs_fnat_table_changed(ipvs);
	mutex_unlock(ip_vs_service_mutex(ipvs));
	return ret;
}

int ip_vs_genl_new_laddr(struct sk_buff *skb, struct genl_info *info)
{
	return ip_vs_genl_laddr_cmd(skb, info, true);
}

int ip_vs_genl_del_laddr(struct sk_buff *skb, struct genl_info *info)
{
	return ip_vs_genl_laddr_cmd(skb, info, false);
}

/* One IPVS_CMD_NEW_LADDR message; with svc (IPVS_CMD_GET_TABLE), after the
 * service's key, as the table's destinations have it.
 */
static int ip_vs_genl_fill_laddr(struct sk_buff *skb,
				 struct netlink_callback *cb,
				 struct ip_vs_service *svc,
				 struct ip_vs_laddr *la)
{
	struct nlattr *nest;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &ip_vs_genl_family, NLM_F_MULTI, IPVS_CMD_NEW_LADDR);
	if (!hdr)
		return -EMSGSIZE;
	if (svc) {
		genl_dump_check_consistent(cb, hdr);
		if (ip_vs_genl_put_svc_key(skb, svc))
			goto fail;
	}
	nest = nla_nest_start(skb, IPVS_CMD_ATTR_LADDR);
	if (!nest)
		goto fail;
	if (nla_put(skb, IPVS_LADDR_ATTR_ADDR, sizeof(la->addr), &la->addr) ||
	    nla_put_u64_64bit(skb, IPVS_LADDR_ATTR_PORT_CONFLICT,
			      atomic64_read(&la->port_conflict),
			      IPVS_LADDR_ATTR_UNSPEC) ||
	    nla_put_u32(skb, IPVS_LADDR_ATTR_CONN_COUNTS,
			atomic_read(&la->conn_counts)))
		goto fail;
	nla_nest_end(skb, nest);
	genlmsg_end(skb, hdr);
	return 0;
fail:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

int ip_vs_genl_dump_laddrs(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct netns_ipvs *ipvs = net_ipvs(sock_net(skb->sk));
	struct ip_vs_service *svc;
	struct ip_vs_laddr *la;
	struct nlattr **attrs;
	int idx = 0, start = cb->args[0];
	int ret = 0;

	attrs = ip_vs_genl_dump_attrs(cb);
	if (!attrs[IPVS_CMD_ATTR_SERVICE])
		return -EINVAL;
	mutex_lock(ip_vs_service_mutex(ipvs));
	svc = ip_vs_genl_find_service(ipvs, attrs[IPVS_CMD_ATTR_SERVICE]);
	if (IS_ERR_OR_NULL(svc)) {
		ret = svc ? PTR_ERR(svc) : -ESRCH;
		goto out;
	}
	list_for_each_entry(la, &svc->fnat.laddrs, n_list) {
		if (idx++ < start)
			continue;
		if (ip_vs_genl_fill_laddr(skb, cb, NULL, la) < 0) {
			idx--;
			break;
		}
	}
	cb->args[0] = idx;
	ret = skb->len;
out:
	mutex_unlock(ip_vs_service_mutex(ipvs));
	return ret;
}

/* IPVS_CMD_GET_TABLE: the local addresses of svc, after its destinations
 * (service mutex held).  idx counts the service's messages before them;
 * cb->args[1] counts those sent when a part of the dump ended inside them.
 */
int ip_vs_laddr_dump_table(struct sk_buff *skb, struct ip_vs_service *svc,
			   struct netlink_callback *cb, long idx)
{
	struct ip_vs_laddr *la;

	list_for_each_entry(la, &svc->fnat.laddrs, n_list) {
		if (++idx < cb->args[1])
			continue;
		if (ip_vs_genl_fill_laddr(skb, cb, svc, la) < 0)
			return -EMSGSIZE;
		cb->args[1] = idx + 1;
	}
	return 0;
}

/* /proc/net/ip_vs_conn_fnat: FULLNAT connections with their local side */
#ifdef CONFIG_PROC_FS
struct ip_vs_fnat_iter {
	struct seq_net_private p;
	unsigned int bucket;
};

static struct ip_vs_conn *ip_vs_fnat_seq_idx(struct seq_file *seq, loff_t pos)
{
	struct ip_vs_fnat_iter *it = seq->private;
	struct ip_vs_conn *cp;
	unsigned int i;

	for (i = 0; i <= ip_vs_fnat_tab_mask; i++) {
		hlist_for_each_entry_rcu(cp, &ip_vs_fnat_tab[i], fnat.o_list) {
			if (cp->ipvs != net_ipvs(seq_file_net(seq)))
				continue;
			if (pos-- == 0) {
				it->bucket = i;
				return cp;
			}
		}
	}
	return NULL;
}

static void *ip_vs_fnat_seq_start(struct seq_file *seq, loff_t *pos)
	__acquires(RCU)
{
	rcu_read_lock();
	return *pos ? ip_vs_fnat_seq_idx(seq, *pos - 1) : SEQ_START_TOKEN;
}

static void *ip_vs_fnat_seq_next(struct seq_file *seq, void *v, loff_t *pos)
{
	struct ip_vs_fnat_iter *it = seq->private;
	struct ip_vs_conn *cp = v;
	struct hlist_node *e;
	unsigned int i;

	++*pos;
	if (v == SEQ_START_TOKEN)
		return ip_vs_fnat_seq_idx(seq, 0);
	e = rcu_dereference(hlist_next_rcu(&cp->fnat.o_list));
	for (;;) {
		for (; e; e = rcu_dereference(hlist_next_rcu(e))) {
			cp = hlist_entry(e, struct ip_vs_conn, fnat.o_list);
			if (cp->ipvs == net_ipvs(seq_file_net(seq)))
				return cp;
		}
		i = ++it->bucket;
		if (i > ip_vs_fnat_tab_mask)
			return NULL;
		e = rcu_dereference(hlist_first_rcu(&ip_vs_fnat_tab[i]));
	}
}

static void ip_vs_fnat_seq_stop(struct seq_file *seq, void *v)
	__releases(RCU)
{
	rcu_read_unlock();
}

static int ip_vs_fnat_seq_show(struct seq_file *seq, void *v)
{
	const struct ip_vs_conn *cp = v;

	if (v == SEQ_START_TOKEN) {
		seq_puts(seq,
			 "Pro FromIP   FPrt ToIP     TPrt LocalIP  LPrt DestIP   DPrt State       Expires\n");
		return 0;
	}
#ifdef CONFIG_IP_VS_IPV6
	if (cp->af == AF_INET6) {
		seq_printf(seq, "%-3s %pI6 %04X %pI6 %04X %pI6 %04X %pI6 %04X %-11s %7u\n",
			   ip_vs_proto_name(cp->protocol),
			   &cp->caddr.in6, ntohs(cp->cport),
			   &cp->vaddr.in6, ntohs(cp->vport),
			   &cp->fnat.lip.in6, ntohs(cp->fnat.lport),
			   &cp->daddr.in6, ntohs(cp->dport),
			   ip_vs_state_name(cp),
			   jiffies_delta_to_msecs(cp->timer.expires - jiffies) / 1000);
		return 0;
	}
#endif
	seq_printf(seq, "%-3s %08X %04X %08X %04X %08X %04X %08X %04X %-11s %7u\n",
		   ip_vs_proto_name(cp->protocol),
		   ntohl(cp->caddr.ip), ntohs(cp->cport),
		   ntohl(cp->vaddr.ip), ntohs(cp->vport),
		   ntohl(cp->fnat.lip.ip), ntohs(cp->fnat.lport),
		   ntohl(cp->daddr.ip), ntohs(cp->dport),
		   ip_vs_state_name(cp),
		   jiffies_delta_to_msecs(cp->timer.expires - jiffies) / 1000);
	return 0;
}

static const struct seq_operations ip_vs_fnat_conn_seq_ops = {
	.start = ip_vs_fnat_seq_start,
	.next  = ip_vs_fnat_seq_next,
	.stop  = ip_vs_fnat_seq_stop,
	.show  = ip_vs_fnat_seq_show,
};

int ip_vs_fnat_proc_init(struct netns_ipvs *ipvs)
{
	if (!proc_create_net("ip_vs_conn_fnat", 0440, ipvs->net->proc_net,
			     &ip_vs_fnat_conn_seq_ops,
			     sizeof(struct ip_vs_fnat_iter)))
		return -ENOMEM;
	return 0;
}

void ip_vs_fnat_proc_cleanup(struct netns_ipvs *ipvs)
{
	remove_proc_entry("ip_vs_conn_fnat", ipvs->net->proc_net);
}
#else
int ip_vs_fnat_proc_init(struct netns_ipvs *ipvs)
{
	return 0;
}

void ip_vs_fnat_proc_cleanup(struct netns_ipvs *ipvs)
{
}
#endif

int ip_vs_fnat_tab_get(void)
{
	unsigned int i, size;
	int err = 0;

	mutex_lock(&ip_vs_fnat_tab_mutex);
	if (ip_vs_fnat_tab_users++)
		goto out;
	size = max_t(unsigned int, ip_vs_conn_tab_size, IP_VS_FNAT_TAB_MIN);
	ip_vs_fnat_tab = kvmalloc_array(size, sizeof(*ip_vs_fnat_tab),
					GFP_KERNEL);
	if (!ip_vs_fnat_tab) {
		ip_vs_fnat_tab_users--;
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < size; i++)
		INIT_HLIST_HEAD(&ip_vs_fnat_tab[i]);
	ip_vs_fnat_tab_mask = size - 1;
	get_random_bytes(&ip_vs_fnat_rnd, sizeof(ip_vs_fnat_rnd));
	pr_info("FULLNAT reply table configured (size=%u, memory=%zuKbytes)\n",
		size, size * sizeof(*ip_vs_fnat_tab) / 1024);
out:
	mutex_unlock(&ip_vs_fnat_tab_mutex);
	return err;
}

/* After the last namespace: no connection and no packet can reach it. */
void ip_vs_fnat_tab_put(void)
{
	mutex_lock(&ip_vs_fnat_tab_mutex);
	if (!--ip_vs_fnat_tab_users) {
		kvfree(ip_vs_fnat_tab);
		ip_vs_fnat_tab = NULL;
	}
	mutex_unlock(&ip_vs_fnat_tab_mutex);
}
