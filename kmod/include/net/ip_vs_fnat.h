/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * IPVS FULLNAT and local-address pools: declarations shared by the patched
 * IPVS core (include/net/ip_vs.h includes this file) and our own sources.
 */
#ifndef _NET_IP_VS_FNAT_H
#define _NET_IP_VS_FNAT_H

#include <linux/types.h>
#include <linux/jiffies.h>
#include <linux/minmax.h>
#include <linux/list.h>
#include <linux/atomic.h>
#include <linux/refcount.h>
#include <linux/rcupdate.h>
#include <linux/netfilter.h>
#include <net/ip_vs_compat.h>
#include <linux/user_namespace.h>
#include <net/net_namespace.h>

struct sk_buff;
struct genl_info;
struct netlink_callback;
struct nlattr;
struct ip_vs_conn;
struct ip_vs_conn_param;
struct ip_vs_service;
struct ip_vs_proto_data;
struct ip_vs_protocol;
struct ip_vs_iphdr;
struct ip_vs_dest;
struct ip_vs_dest_user_kern;
struct netns_ipvs;
struct mutex;
struct genl_family;

/* ip_vs_ctl.c */
extern struct genl_family ip_vs_genl_family;
struct ip_vs_service *ip_vs_genl_find_service(struct netns_ipvs *ipvs,
					      struct nlattr *nla);

/* TOA option: the client's address and port for the real server */
#define IP_VS_TCPOPT_TOA	254
#define IP_VS_TCPOLEN_TOA	8
#define IP_VS_TCPOPT_TOA_V6	253
#define IP_VS_TCPOLEN_TOA_V6	20

/* The local ports of one local address in one namespace, shared by every
 * service that has the address: a bit per port and protocol (TCP, UDP) set
 * while a connection holds the port (ip_vs_laddr.c).
 */
struct ip_vs_lport_pool;

/* A local address of a FULLNAT service */
struct ip_vs_laddr {
	struct list_head	n_list;		/* in the service's list */
	int			af;
	union nf_inet_addr	addr;
	refcount_t		refcnt;		/* list + connections */
	struct ip_vs_lport_pool	*pool;		/* its ports */
	atomic64_t		port_conflict;	/* times it had no free port */
	atomic_t		conn_counts;	/* connections bound */
	struct rcu_head		rcu_head;
};

/* Per-service FULLNAT state, embedded in struct ip_vs_service (zeroed) */
struct ip_vs_fnat_svc {
	struct list_head	laddrs;		/* RCU, written under the service mutex */
	unsigned int		num_laddrs;
	atomic_t		next_laddr;	/* round-robin cursor */
	u32			est_timeout;	/* seconds, 0: global default */
	u8			proxy_protocol;	/* IP_VS_PROXY_PROTOCOL_* */
};

/* The largest per-service ESTABLISHED timeout: ipvsadm's 31 days, less
 * where that many jiffies would not fit in an int (HZ above 800).
 */
#define IP_VS_FNAT_EST_TIMEOUT_MAX \
	((u32)min_t(unsigned long, 31UL * 24 * 3600, INT_MAX / HZ))

/* Per-connection FULLNAT state, the last member of struct ip_vs_conn: only
 * the connections of the FULLNAT cache carry it (ip_vs_fnat_has_state()),
 * the others end before it.
 */
struct ip_vs_fnat_conn {
	struct hlist_node	o_list;		/* in the out-direction table */
	struct ip_vs_laddr	*laddr;		/* NULL: not a FULLNAT conn */
	union nf_inet_addr	lip;		/* local address */
	__be16			lport;		/* local port */
	u8			flags;
	u8			pp;		/* PROXY protocol version, 0: none */
	u8			pp_len;		/* length of its header */
	u32			init_seq;	/* our ISN towards the RS */
	u32			delta;		/* init_seq - client ISN */
	u32			fdata_seq;	/* RS SYN-ACK seq + 1 */
};

/* Whether connection cp carries its FULLNAT state: ip_vs_conn_new()
 * allocates it for a connection to a FULLNAT real server and for every
 * copy the sync backup makes (upstream's ip_vs_try_bind_dest() may give a
 * copy its real server's forwarding method later), so a connection whose
 * forwarding method is FULLNAT always has it.  Whatever meets connections
 * of any kind checks this before it reads cp->fnat.
 */
#define ip_vs_fnat_has_state(cp)	((cp)->fnat_state)

#define IP_VS_FNAT_F_HASHED	0x01		/* in the out-direction table */
#define IP_VS_FNAT_F_SEQ	0x02		/* init_seq/delta are valid */
#define IP_VS_FNAT_F_FDATA	0x04		/* fdata_seq is valid */
#define IP_VS_FNAT_F_PP_ACKED	0x08		/* the RS has the PROXY header */

/* Extended counters, /proc/net/ip_vs_ext_stats (alibaba-lvs.md 4.14) */
enum {
	FULLNAT_ADD_TOA_OK = 1,
	FULLNAT_ADD_TOA_FAIL_LEN,
	FULLNAT_ADD_TOA_HEAD_FULL,
	FULLNAT_ADD_TOA_FAIL_MEM,
	FULLNAT_ADD_TOA_FAIL_PROTO,
	FULLNAT_CONN_REUSED,
	FULLNAT_CONN_REUSED_CLOSE,
	FULLNAT_CONN_REUSED_TIMEWAIT,
	FULLNAT_CONN_REUSED_FINWAIT,
	FULLNAT_CONN_REUSED_CLOSEWAIT,
	FULLNAT_CONN_REUSED_LASTACK,
	FULLNAT_CONN_REUSED_ESTAB,
	FULLNAT_NO_LADDR,
	FULLNAT_LPORT_EXHAUSTED,
	FULLNAT_ADD_PP_OK,
	FULLNAT_ADD_PP_FAIL,
	FULLNAT_SYNC_CONN,
	FULLNAT_SYNC_REFUSED,
	IP_VS_EXT_STAT_LAST
};

struct ip_vs_ext_stats {
	u64 items[IP_VS_EXT_STAT_LAST];
};

/* Per-netns FULLNAT state (sysctls, counters) */
struct ip_vs_fnat_net {
	int	sysctl_timestamp_remove;
	int	sysctl_mss_adjust;
	int	sysctl_conn_reused;
	int	sysctl_toa;
	int	sysctl_lport_max;
	int	sysctl_lport_min;
	int	sysctl_lport_tries;
	int	sysctl_sync_flush_ms;
	int	sysctl_sync_resend;	/* write-only: 1 resends the table */
	struct netns_ipvs *ipvs;
	struct ip_vs_ext_stats __percpu *ext_stats;
	struct ctl_table_header *sysctl_hdr;
	struct ctl_table *sysctl_tbl;
	/* generation of the services, destinations and local addresses, for
	 * the dumps' consistency check; changed under the service mutex
	 */
	unsigned int table_gen;
	/* local addresses of the connections that peers sync to us, with
	 * their ports' pools: RCU, added under the service mutex, freed with
	 * the namespace (ip_vs_laddr.c)
	 */
	struct list_head sync_laddrs;
};

/* The table changed (service mutex held): dumps in progress end with
 * NLM_F_DUMP_INTR.
 */
void ip_vs_fnat_table_changed(struct netns_ipvs *ipvs);
unsigned int ip_vs_fnat_table_gen(struct netns_ipvs *ipvs);

#define IP_VS_FNAT_INC_STATS(ipvs, item) \
	this_cpu_inc((ipvs)->fnat->ext_stats->items[item])

/* Feature bits in IPVS_INFO_ATTR_FEATURES */
#define IP_VS_FEATURES	(IPVS_FEATURE_FULLNAT | IPVS_FEATURE_EST_TIMEOUT | \
			 IPVS_FEATURE_PROXY_PROTOCOL | IPVS_FEATURE_SYNC_FULLNAT | \
			 IPVS_FEATURE_CONN_DUMP | IPVS_FEATURE_TABLE_LADDRS | \
			 IPVS_FEATURE_TABLE_NO_STATS)

struct tcphdr;
struct tcphdr *ip_vs_tcp_writable(struct sk_buff *skb, unsigned int thoff);
void ip_vs_tcp_csum_partial(struct sk_buff *skb, unsigned int thoff);
void ip_vs_tcp_opts(struct tcphdr *th, u8 kind,
		    void (*fn)(u8 *opt, int len, void *arg), void *arg);

/* Our sysctls are where the kernel's IPVS has its own: in a namespace of an
 * unprivileged user from 6.10 on, which is where upstream began to show them
 * there (6.1 hides them).
 */
static inline bool ip_vs_sysctls_hidden(const struct net *net)
{
	return IP_VS_SYSCTLS_HIDDEN_UNPRIV && net->user_ns != &init_user_ns;
}

/* ip_vs_xmit.c (patch 0015): FULLNAT's route and send, the transmitters' */
int ip_vs_fnat_get_out_rt(struct sk_buff *skb, struct ip_vs_conn *cp,
			  struct ip_vs_dest *dest, union nf_inet_addr *daddr,
			  struct ip_vs_iphdr *ipvsh);
int ip_vs_fnat_send(struct sk_buff *skb, struct ip_vs_conn *cp);

/* ip_vs_fnat.c: per-netns state, data path */
int ip_vs_fnat_net_init(struct netns_ipvs *ipvs);
void ip_vs_fnat_net_cleanup(struct netns_ipvs *ipvs);
int ip_vs_fnat_xmit(struct sk_buff *skb, struct ip_vs_conn *cp,
		    struct ip_vs_protocol *pp, struct ip_vs_iphdr *ipvsh);
int ip_vs_fnat_response(struct sk_buff *skb, struct ip_vs_proto_data *pd,
			struct ip_vs_conn *cp, struct ip_vs_iphdr *iph);
int ip_vs_fnat_icmp(struct sk_buff *skb, struct ip_vs_conn *cp, bool out);
void ip_vs_fnat_fdata(struct ip_vs_conn *cp, u32 seq);
unsigned long ip_vs_fnat_est_timeout(struct ip_vs_conn *cp,
				     unsigned long timeout);
u32 ip_vs_fnat_client_seq(const struct ip_vs_conn *cp, u32 seq);

/* ip_vs_pp.c: the PROXY protocol header towards the real server */
void ip_vs_pp_conn_init(struct ip_vs_conn *cp, struct ip_vs_service *svc);
bool ip_vs_pp_allowed(struct ip_vs_service *svc, u16 protocol, u8 pp,
		      const struct ip_vs_dest_user_kern *udest);
bool ip_vs_pp_csum_ok(struct sk_buff *skb, int af, unsigned int thoff);
int ip_vs_pp_insert(struct sk_buff *skb, struct ip_vs_conn *cp,
		    unsigned int thoff, unsigned int mtu);
int ip_vs_pp_syn_data(struct sk_buff *skb, struct ip_vs_conn *cp,
		      unsigned int thoff);

/* Sync options, beside upstream's IPVS_OPT_* of ip_vs_sync.c; mandatory
 * (bit 0x40 clear): a receiver that does not know them drops the connection
 * rather than create one that would send with the wrong addresses and
 * sequence numbers.
 */
#define IPVS_OPT_FULLNAT	0x21
#define IPVS_OPT_SYNPROXY	0x22

/* Connection sync (ip_vs_fnat_sync.c): what a sync message carries of a
 * FULLNAT connection (option IPVS_OPT_FULLNAT) and of a SYNPROXY one
 * (IPVS_OPT_SYNPROXY), decoded into host order.
 */
#define IP_VS_FNAT_SYNC_F_FNAT	0x01		/* fnat part present */
#define IP_VS_FNAT_SYNC_F_SP	0x02		/* sp part present */

struct ip_vs_fnat_sync {
	u8			have;		/* IP_VS_FNAT_SYNC_F_* */
	/* IPVS_OPT_FULLNAT */
	union nf_inet_addr	lip;
	__be16			lport;
	u8			flags;		/* IP_VS_FNAT_F_SYNCED bits */
	u8			pp;
	u8			pp_len;
	u32			init_seq;
	u32			delta;
	u32			fdata_seq;
	/* IPVS_OPT_SYNPROXY */
	u32			sp_delta;
	u32			sp_isn;
	u32			sp_cisn;
	u32			sp_ts_coff;
	u32			sp_ts_soff;
	u8			sp_flags;	/* IP_VS_SP_F_EST, IP_VS_SP_F_TS */
	u8			sp_c_wscale;
	u8			sp_d_wscale;
	u8			sp_rs_wscale;
};

/* The flags a backup takes over; IP_VS_FNAT_F_HASHED is its own. */
#define IP_VS_FNAT_F_SYNCED	(IP_VS_FNAT_F_SEQ | IP_VS_FNAT_F_FDATA | \
				 IP_VS_FNAT_F_PP_ACKED)

/* The longest a connection waits in a partly filled sync message before
 * the master sends it: fullnat_sync_flush_ms, for every connection (upstream
 * has a fixed IPVS_SYNC_FLUSH_TIME, 2 s, checked every second).
 */
#define IP_VS_FNAT_SYNC_FLUSH_MS	200
unsigned long ip_vs_fnat_sync_flush(struct netns_ipvs *ipvs);
unsigned long ip_vs_fnat_sync_check_period(struct netns_ipvs *ipvs);
/* ip_vs_sync_conn()'s pkts for a connection of a table resend: sent now */
#define IP_VS_SYNC_RESEND	(-1)
/* ip_vs_conn.c (patch 0011) */
void ip_vs_conn_sync_all(struct netns_ipvs *ipvs);
struct ctl_table;
int ip_vs_fnat_sync_resend_sysctl(IP_VS_CTL_CONST struct ctl_table *table,
				  int write, void *buffer, size_t *lenp,
				  loff_t *ppos);

int ip_vs_fnat_sync_len(const struct ip_vs_conn *cp);
u8 *ip_vs_fnat_sync_put(const struct ip_vs_conn *cp, u8 *p, int len);
int ip_vs_fnat_sync_parse(u8 type, const u8 *p, unsigned int plen, int af,
			  struct ip_vs_fnat_sync *fs);
int ip_vs_fnat_sync_check(struct netns_ipvs *ipvs,
			  const struct ip_vs_conn_param *param,
			  unsigned int flags);
bool ip_vs_fnat_sync_same(const struct ip_vs_conn *cp,
			  const struct ip_vs_fnat_sync *fs);
void ip_vs_fnat_sync_apply(struct ip_vs_conn *cp,
			   const struct ip_vs_fnat_sync *fs);
int ip_vs_fnat_conn_new(struct ip_vs_conn *cp,
			const struct ip_vs_fnat_sync *fs,
			struct ip_vs_dest *dest, bool fullnat);

/* ip_vs_laddr.c: local addresses, port allocation, out-direction table */
int ip_vs_fnat_conn_bind(struct ip_vs_conn *cp, struct ip_vs_service *svc);
int ip_vs_laddr_sync_prepare(struct netns_ipvs *ipvs, int af,
			     const union nf_inet_addr *addr);
int ip_vs_fnat_conn_bind_synced(struct ip_vs_conn *cp,
				const union nf_inet_addr *lip, __be16 lport);
void ip_vs_laddr_sync_flush(struct netns_ipvs *ipvs);
void ip_vs_fnat_conn_unbind(struct ip_vs_conn *cp);
struct ip_vs_conn *ip_vs_fnat_out_get(const struct ip_vs_conn_param *p);
int ip_vs_fnat_tab_get(void);
void ip_vs_fnat_tab_put(void);
void ip_vs_refuse_client(struct netns_ipvs *ipvs, int af, u16 protocol,
			 struct sk_buff *skb);
int ip_vs_fnat_refuse(struct ip_vs_service *svc, struct sk_buff *skb,
		      struct ip_vs_iphdr *iph);
void ip_vs_laddr_flush(struct ip_vs_service *svc);
int ip_vs_genl_new_laddr(struct sk_buff *skb, struct genl_info *info);
int ip_vs_genl_del_laddr(struct sk_buff *skb, struct genl_info *info);
int ip_vs_genl_dump_laddrs(struct sk_buff *skb, struct netlink_callback *cb);
int ip_vs_laddr_dump_table(struct sk_buff *skb, struct ip_vs_service *svc,
			   struct netlink_callback *cb, long idx);
/* ip_vs_ctl.c: the key of svc in IPVS_CMD_ATTR_SERVICE */
int ip_vs_genl_put_svc_key(struct sk_buff *skb, struct ip_vs_service *svc);
int ip_vs_fnat_proc_init(struct netns_ipvs *ipvs);
void ip_vs_fnat_proc_cleanup(struct netns_ipvs *ipvs);

/* ip_vs_conn.c: a walk of one namespace's connections in parts, as a
 * netlink dump needs. bucket and skip (the namespace's entries of that
 * bucket already passed) say where the next part starts; gen is the
 * table's generation the walk last saw (0 where the table is never
 * replaced). fn is called under RCU; a non-zero return ends the part and
 * the next one starts with the same connection.
 */
struct ip_vs_conn_walk {
	unsigned int	bucket;
	unsigned int	skip;
	int		gen;
};

int ip_vs_conn_walk(struct netns_ipvs *ipvs, struct ip_vs_conn_walk *w,
		    int (*fn)(struct ip_vs_conn *cp, void *arg), void *arg);

/* ip_vs_conn_nl.c: IPVS_CMD_GET_CONN */
int ip_vs_genl_dump_conns(struct sk_buff *skb, struct netlink_callback *cb);

#endif /* _NET_IP_VS_FNAT_H */
