/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * IPVS SYNPROXY: declarations shared by the patched IPVS core
 * (include/net/ip_vs.h includes this file) and ip_vs_synproxy.c.
 */
#ifndef _NET_IP_VS_SYNPROXY_H
#define _NET_IP_VS_SYNPROXY_H

#include <linux/types.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/sysctl.h>
#include <linux/timer.h>

struct ip_vs_conn;
struct ip_vs_service;
struct ip_vs_proto_data;
struct ip_vs_iphdr;
struct ip_vs_dest_user_kern;
struct netns_ipvs;
struct seq_file;

#ifndef IP_VS_SVC_F_SYNPROXY
#define IP_VS_SVC_F_SYNPROXY	0x8000		/* service: SYNPROXY */
#endif
#ifndef IP_VS_CONN_F_SYNPROXY
#define IP_VS_CONN_F_SYNPROXY	0x8000		/* connection: SYNPROXY */
#endif

/* Per-connection SYNPROXY state.  Only a SYNPROXY connection has it:
 * struct ip_vs_conn points to it (cp->sp, NULL on every other connection),
 * so NAT, DR and plain FULLNAT connections do not carry it.  It is set once:
 * before the connection is hashed, or on a backup's copy by the sync thread
 * (ip_vs_sp_of() pairs with that store), and freed with the connection,
 * after its RCU grace period.  128 bytes without debug options.
 */
struct ip_vs_synproxy_conn {
	struct ip_vs_conn	*cp;		/* the connection (its timer) */
	struct sk_buff_head	ack_q;		/* client packets before RS */
	struct timer_list	timer;		/* SYN and ACK retransmission */
	u32			isn;		/* our cookie ISN to the client */
	u32			delta;		/* isn - RS ISN */
	u32			last_seq;	/* ACK storm: last RS seq/ack */
	u32			last_ack;
	u32			cisn;		/* client's ISN */
	u32			data;		/* the cookie's data */
	u32			ts_ours;	/* our SYN-ACK's TSval */
	u32			ts_syn;		/* TSval of our SYN to the RS */
	u32			ts_coff;	/* client TSval -> RS */
	u32			ts_soff;	/* RS TSval -> client */
	unsigned long		syn_sent;	/* jiffies of the last SYN */
	u8			retries;	/* SYNs resent */
	u8			acks;		/* handshake ACKs repeated */
	u16			dup_acks;
	u8			flags;
	u8			c_wscale;	/* client's shift, 15: none */
	u8			d_wscale;	/* our shift to the client */
	u8			rs_wscale;	/* RS's shift, 15: none */
};

#define IP_VS_SP_WS_NONE	15		/* no window scale option */

/* The SYNPROXY state of cp, or NULL: the connection is not a SYNPROXY one
 * (or a backup's sync thread has not given it the state yet).  A macro:
 * struct ip_vs_conn is not complete here.
 */
#define ip_vs_sp_of(cp)		smp_load_acquire(&(cp)->sp)

/* sp.flags: written under ack_q.lock, EST read with acquire semantics */
#define IP_VS_SP_F_EST		0x01		/* RS answered, delta valid */
#define IP_VS_SP_F_TS		0x02		/* timestamps translated */
#define IP_VS_SP_F_OPEN		0x04		/* our SYN is out: retries may go */
#define IP_VS_SP_F_CLOSING	0x08		/* no more SYNs to the RS */
#define IP_VS_SP_F_ACKWAIT	0x10		/* RS silent since our ACK */

/* Counters, in /proc/net/ip_vs_ext_stats after FULLNAT's (alibaba-lvs.md 4.14 names) */
enum {
	SYNPROXY_RS_ERROR = 1,
	SYNPROXY_NULL_ACK,
	SYNPROXY_BAD_ACK,
	SYNPROXY_OK_ACK,
	SYNPROXY_SYN_CNT,
	SYNPROXY_ACK_STORM,
	SYNPROXY_SYNSEND_QLEN,
	SYNPROXY_CONN_REUSED,
	SYNPROXY_CONN_REUSED_CLOSE,
	SYNPROXY_CONN_REUSED_TIMEWAIT,
	SYNPROXY_CONN_REUSED_FINWAIT,
	SYNPROXY_CONN_REUSED_CLOSEWAIT,
	SYNPROXY_CONN_REUSED_LASTACK,
	DEFENCE_IP_FRAG_DROP,
	DEFENCE_TCP_DROP,
	DEFENCE_UDP_DROP,
	SYNPROXY_NO_DEST,
	SYNPROXY_ACK_RESENT,		/* ours: handshake ACK repeated */
	IP_VS_SP_STAT_LAST
};

struct ip_vs_sp_stats {
	u64 items[IP_VS_SP_STAT_LAST];
};

#define IP_VS_SP_VIP_BITS	4
#define IP_VS_SP_OPEN_LOCKS	16	/* a power of two */

/* Per-netns SYNPROXY state */
struct ip_vs_synproxy_net {
	int	sysctl_init_mss;
	int	sysctl_sack;
	int	sysctl_wscale;
	int	sysctl_timestamp;
	int	sysctl_synack_ttl;
	int	sysctl_defer;
	int	sysctl_conn_reuse;
	int	sysctl_conn_reuse_close;
	int	sysctl_conn_reuse_time_wait;
	int	sysctl_conn_reuse_fin_wait;
	int	sysctl_conn_reuse_close_wait;
	int	sysctl_conn_reuse_last_ack;
	int	sysctl_ack_skb_store_thresh;
	int	sysctl_ack_storm_thresh;
	int	sysctl_syn_retry;
	int	sysctl_defence_tcp_drop;
	int	sysctl_defence_udp_drop;
	int	sysctl_defence_frag_drop;
	struct ip_vs_sp_stats __percpu *stats;
	/* addresses with a SYNPROXY TCP service: the defences' scope */
	struct hlist_head vips[1 << IP_VS_SP_VIP_BITS];
	unsigned int nvips;		/* under the service mutex */
	struct nf_hook_ops *frag_ops;	/* defence_frag_drop's hooks, or NULL */
	/* Opening a connection from a cookie: one handshake's packets (its
	 * ACK, its first data) may race on two CPUs; the stripe of the
	 * cookie makes them take turns.
	 */
	spinlock_t open_lock[IP_VS_SP_OPEN_LOCKS];
	struct netns_ipvs *ipvs;
	struct ctl_table_header *sysctl_hdr;
	struct ctl_table *sysctl_tbl;
};

int ip_vs_synproxy_net_init(struct netns_ipvs *ipvs);
void ip_vs_synproxy_net_cleanup(struct netns_ipvs *ipvs);
void ip_vs_synproxy_stats_lines(struct seq_file *seq, struct netns_ipvs *ipvs);
struct ip_vs_synproxy_conn *ip_vs_synproxy_conn_alloc(void);
void ip_vs_synproxy_conn_init(struct ip_vs_conn *cp);
void ip_vs_synproxy_conn_expire(struct ip_vs_conn *cp);
void ip_vs_synproxy_conn_free(struct ip_vs_conn *cp);
bool ip_vs_synproxy_icmp(struct sk_buff *skb, struct ip_vs_conn *cp,
			 unsigned int thoff);
/* ip_vs_core.c (patch 0010): a client packet in the service's counters */
void ip_vs_in_stats(struct ip_vs_conn *cp, struct sk_buff *skb);
bool ip_vs_synproxy_schedule(struct netns_ipvs *ipvs, int af,
			     struct sk_buff *skb, struct ip_vs_proto_data *pd,
			     int *verdict, struct ip_vs_conn **cpp,
			     struct ip_vs_iphdr *iph);
/* Does ip_vs_synproxy_in() see the client's packets of cp: those of a
 * SYNPROXY connection, and those of a TCP connection that closes (FIN_WAIT to
 * LAST_ACK), which a new SYNPROXY handshake from the same client port may
 * meet.  A macro: struct ip_vs_conn is not complete here.
 */
#define ip_vs_synproxy_in_watch(cp)					\
({									\
	const struct ip_vs_conn *__cp = (cp);				\
									\
	(__cp->flags & IP_VS_CONN_F_SYNPROXY) ||			\
	(__cp->protocol == IPPROTO_TCP &&				\
	 __cp->state >= IP_VS_TCP_S_FIN_WAIT &&				\
	 __cp->state <= IP_VS_TCP_S_LAST_ACK);				\
})
unsigned int ip_vs_synproxy_in(struct sk_buff *skb, struct ip_vs_conn *cp,
			       struct ip_vs_proto_data *pd,
			       struct ip_vs_iphdr *iph);
unsigned int ip_vs_synproxy_out(struct sk_buff *skb, struct ip_vs_conn *cp,
				struct ip_vs_proto_data *pd,
				struct ip_vs_iphdr *iph);
void ip_vs_synproxy_svc_flags(struct ip_vs_service *svc, unsigned int from,
			      unsigned int to);
bool ip_vs_synproxy_allowed(struct ip_vs_service *svc, u16 protocol,
			    unsigned int flags,
			    const struct ip_vs_dest_user_kern *udest);
bool ip_vs_synproxy_udp_drop(struct netns_ipvs *ipvs, int af,
			     struct ip_vs_iphdr *iph);

#endif /* _NET_IP_VS_SYNPROXY_H */
