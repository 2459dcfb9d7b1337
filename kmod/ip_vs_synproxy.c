// SPDX-License-Identifier: GPL-2.0-only
/*
 * IPVS SYNPROXY: the director answers a client's SYN with a SYN-ACK whose
 * sequence number is a keyed cookie and keeps no state for it.  The client's
 * ACK, when its cookie checks, creates the connection; only then is a SYN sent
 * to the real server, and the client's first packets wait until the real
 * server's SYN-ACK.  From then on the difference between the cookie and the
 * real server's ISN is applied in both directions (sequence numbers,
 * acknowledgements, SACK blocks), and windows are rescaled when the client's
 * and the real server's window scales differ.
 *
 * The cookie: siphash over the addresses and ports with two random keys and
 * a counter of minutes, like TCP syncookies; its low 10 bits carry the MSS
 * index, the client's window scale, SACK and timestamp permission, and unlike
 * TCP syncookies the hash covers them: a client cannot alter its options by
 * acknowledging another number.
 *
 * Timestamps (synproxy_timestamp=1): the SYN-ACK carries the director's own
 * clock, in milliseconds plus a keyed offset per address pair as the kernel's
 * TCP does.  The real server's clock differs from it, so on every packet
 * TSval and TSecr are translated by the difference, like sequence numbers.
 * On FULLNAT the real server sees the director's clock too, not the
 * client's: many clients share one local address, and the real server's
 * PAWS must see its timestamps grow, which is why FULLNAT strips them from
 * plain SYNs.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/slab.h>
#include <linux/siphash.h>
#include <linux/sysctl.h>
#include <linux/seq_file.h>
#include <linux/proc_fs.h>
#include <linux/hash.h>
#include <linux/mutex.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <net/ip_vs_compat.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/ip6_route.h>
#include <net/ip6_checksum.h>
#include <net/route.h>
#include <net/tcp.h>
#include <net/ip_vs.h>

#define IP_VS_SP_INC(ipvs, item) \
	this_cpu_inc((ipvs)->synproxy->stats->items[item])

/* Cookie layout, after the first hash and the client's ISN are taken off:
 * bits 30-31 the minute counter's low bits, 10-29 a hash over everything
 * (the whole counter included), 0-9 data.  A cookie is valid for the four
 * minutes its two counter bits can name: it is checked against the hash of
 * the one they name, so an older cookie fails on its hash.
 */
#define IP_VS_SP_COOKIEBITS	30
#define IP_VS_SP_COOKIEMASK	((1U << IP_VS_SP_COOKIEBITS) - 1)
#define IP_VS_SP_AGEMASK	3		/* minutes a cookie stays valid - 1 */
#define IP_VS_SP_DATABITS	10
#define IP_VS_SP_DATAMASK	((1U << IP_VS_SP_DATABITS) - 1)
#define IP_VS_SP_RETRY_TIME	(3 * HZ)	/* between SYNs to the RS */
#define IP_VS_SP_ACK_TIME	(2 * HZ)	/* between handshake ACK repeats */
#define IP_VS_SP_ACK_REPEATS	3		/* after 2, 4 and 6 s */
#define IP_VS_SP_D_MSS(d)	((d) & 0xf)
#define IP_VS_SP_D_WS(d)	(((d) >> 4) & 0xf)
#define IP_VS_SP_D_SACK		0x100
#define IP_VS_SP_D_TS		0x200

static const u16 ip_vs_sp_msstab[] = {
	64, 256, 512, 536, 1024, 1280, 1440, 1452, 1460, 4312,
};

/* two for the cookie, one for the timestamp offsets */
static siphash_key_t ip_vs_sp_key[3] __read_mostly;

static u32 ip_vs_sp_hash(int i, int af, const union nf_inet_addr *s,
			 const union nf_inet_addr *d, __be16 sport,
			 __be16 dport, u32 count, u32 data)
{
	struct {
		union nf_inet_addr s, d;
		__be16 sport, dport;
		u32 count, data;
	} in;

	memset(&in, 0, sizeof(in));
	if (af == AF_INET6) {
		in.s.in6 = s->in6;
		in.d.in6 = d->in6;
	} else {
		in.s.ip = s->ip;
		in.d.ip = d->ip;
	}
	in.sport = sport;
	in.dport = dport;
	in.count = count;
	in.data = data;
	return (u32)siphash(&in, sizeof(in), &ip_vs_sp_key[i]);
}

static u32 ip_vs_sp_count(void)
{
	return (u32)(jiffies / (60 * HZ));
}

/* client address/port s/sport, VIP d/dport; isn: the client's ISN */
static u32 ip_vs_sp_cookie(int af, const union nf_inet_addr *s,
			   const union nf_inet_addr *d, __be16 sport,
			   __be16 dport, u32 isn, u32 data)
{
	u32 count = ip_vs_sp_count();
	u32 mac = ip_vs_sp_hash(1, af, s, d, sport, dport, count, data);

	return ip_vs_sp_hash(0, af, s, d, sport, dport, 0, 0) + isn +
	       (count << IP_VS_SP_COOKIEBITS) +
	       (((mac << IP_VS_SP_DATABITS) | data) & IP_VS_SP_COOKIEMASK);
}

/* The cookie's data, or -1 when it does not check. */
static int ip_vs_sp_check(int af, const union nf_inet_addr *s,
			  const union nf_inet_addr *d, __be16 sport,
			  __be16 dport, u32 isn, u32 cookie)
{
	u32 now = ip_vs_sp_count(), diff, data, mac;

	cookie -= ip_vs_sp_hash(0, af, s, d, sport, dport, 0, 0) + isn;
	diff = (now - (cookie >> IP_VS_SP_COOKIEBITS)) & IP_VS_SP_AGEMASK;
	data = cookie & IP_VS_SP_DATAMASK;
	mac = ip_vs_sp_hash(1, af, s, d, sport, dport, now - diff, data);
	if ((cookie ^ (mac << IP_VS_SP_DATABITS)) & IP_VS_SP_COOKIEMASK &
	    ~IP_VS_SP_DATAMASK)
		return -1;
	if (IP_VS_SP_D_MSS(data) >= ARRAY_SIZE(ip_vs_sp_msstab) ||
	    (IP_VS_SP_D_WS(data) > TCP_MAX_WSCALE &&
	     IP_VS_SP_D_WS(data) != IP_VS_SP_WS_NONE))
		return -1;
	return data;
}

static u32 ip_vs_sp_mss_index(u32 mss)
{
	u32 i;

	for (i = ARRAY_SIZE(ip_vs_sp_msstab) - 1; i > 0; i--)
		if (ip_vs_sp_msstab[i] <= mss)
			break;
	return i;
}

/* The director's timestamp clock as seen from address s to address d */
static u32 ip_vs_sp_ts_now(int af, const union nf_inet_addr *s,
			   const union nf_inet_addr *d)
{
	return (u32)div_u64(tcp_clock_ns(), NSEC_PER_MSEC) +
	       ip_vs_sp_hash(2, af, s, d, 0, 0, 0, 0);
}

/* Checksums */

static void ip_vs_sp_tcp_csum(struct sk_buff *skb, int af, unsigned int thoff)
{
	struct tcphdr *th = (struct tcphdr *)(skb->data + thoff);
	unsigned int len = skb->len - thoff;
	__wsum csum;

	th->check = 0;
	csum = csum_partial(th, len, 0);
	if (af == AF_INET6)
		th->check = csum_ipv6_magic(&ipv6_hdr(skb)->saddr,
					    &ipv6_hdr(skb)->daddr, len,
					    IPPROTO_TCP, csum);
	else
		th->check = csum_tcpudp_magic(ip_hdr(skb)->saddr,
					      ip_hdr(skb)->daddr, len,
					      IPPROTO_TCP, csum);
	skb->ip_summed = CHECKSUM_NONE;
}

static void ip_vs_sp_set32(struct sk_buff *skb, struct tcphdr *th, void *p,
			   u32 val)
{
	__be32 old = get_unaligned((__be32 *)p);
	__be32 new = htonl(val);

	put_unaligned(new, (__be32 *)p);
	inet_proto_csum_replace4(&th->check, skb, old, new, false);
}

static void ip_vs_sp_set_window(struct sk_buff *skb, struct tcphdr *th,
				u32 win)
{
	__be16 new = htons(min_t(u32, win, 65535U));

	inet_proto_csum_replace2(&th->check, skb, th->window, new, false);
	th->window = new;
}

struct ip_vs_sp_syn {
	struct ip_vs_synproxy_net *sp;
	u32 mss;
	u32 data;
	u32 tsval;		/* ours, when synproxy_timestamp is on */
};

/* The client's SYN becomes our SYN-ACK: options edited in place. */
static void ip_vs_sp_syn_opt(u8 *opt, int len, void *arg)
{
	struct ip_vs_sp_syn *s = arg;
	int ws;

	switch (opt[0]) {
	case TCPOPT_MSS:
		if (len != TCPOLEN_MSS)
			break;
		s->mss = get_unaligned_be16(opt + 2);
		if (!s->mss)
			s->mss = 536;
		s->mss = min_t(u32, s->mss, READ_ONCE(s->sp->sysctl_init_mss));
		s->mss = ip_vs_sp_msstab[ip_vs_sp_mss_index(s->mss)];
		put_unaligned_be16(s->mss, opt + 2);
		return;
	case TCPOPT_WINDOW:
		ws = READ_ONCE(s->sp->sysctl_wscale);
		if (len != TCPOLEN_WINDOW || !ws)
			break;
		s->data = (s->data & ~0xf0) | (min_t(u8, opt[2], TCP_MAX_WSCALE) << 4);
		opt[2] = ws;
		return;
	case TCPOPT_SACK_PERM:
		if (len != TCPOLEN_SACK_PERM || !READ_ONCE(s->sp->sysctl_sack))
			break;
		s->data |= IP_VS_SP_D_SACK;
		return;
	case TCPOPT_TIMESTAMP:
		if (len != TCPOLEN_TIMESTAMP || !READ_ONCE(s->sp->sysctl_timestamp))
			break;
		/* TSecr echoes the client's TSval, TSval is our clock */
		memcpy(opt + 6, opt + 2, 4);
		put_unaligned_be32(s->tsval, opt + 2);
		s->data |= IP_VS_SP_D_TS;
		return;
	}
	memset(opt, TCPOPT_NOP, len);
}

/* Send a packet of the director's own, a SYN-ACK, on the route the kernel
 * gives such packets (by its addresses and mark), as netfilter's SYNPROXY
 * target does: a reply, to where the SYN came from.
 */
static int ip_vs_sp_route_send(struct sk_buff *skb, int af, struct net *net)
{
	int err;

	if (af == AF_INET6)
		err = ip6_route_me_harder(net, NULL, skb);
	else
		err = ip_route_me_harder(net, NULL, skb, RTN_UNSPEC);
	if (err)
		return err;
	skb->ipvs_property = 1;
	nf_reset_ct(skb);
	ip_vs_notrack(skb);
	skb_orphan(skb);
	skb_clear_tstamp(skb);
	if (af == AF_INET6)
		ip6_local_out(net, NULL, skb);
	else
		ip_local_out(net, NULL, skb);
	return 0;
}

/* Answer a client SYN with a cookie SYN-ACK; consumes skb. */
static int ip_vs_sp_synack(struct netns_ipvs *ipvs, int af,
			   struct sk_buff *skb, struct ip_vs_iphdr *iph)
{
	struct ip_vs_sp_syn s = {
		.sp = ipvs->synproxy,
		.mss = 536,
		.data = IP_VS_SP_WS_NONE << 4,
	};
	unsigned int iplen = af == AF_INET6 ? sizeof(struct ipv6hdr) :
					      sizeof(struct iphdr);
	unsigned int thoff = iph->len;
	union nf_inet_addr tmp;
	struct tcphdr *th;
	unsigned int hlen;
	__be16 port;
	u32 isn;

	th = ip_vs_tcp_writable(skb, thoff);
	if (!th)
		goto drop;
	hlen = th->doff * 4;
	/* the answer carries none of the client's IP options or extension
	 * headers: the TCP header moves up to the fixed IP header
	 */
	if (thoff != iplen) {
		memmove(skb->data + iplen, th, hlen);
		thoff = iplen;
		th = (struct tcphdr *)(skb->data + thoff);
	}
	if (pskb_trim(skb, thoff + hlen))
		goto drop;
	skb_set_transport_header(skb, thoff);

	if (READ_ONCE(s.sp->sysctl_timestamp))
		s.tsval = ip_vs_sp_ts_now(af, &iph->daddr, &iph->saddr);
	ip_vs_tcp_opts(th, 0, ip_vs_sp_syn_opt, &s);
	s.data |= ip_vs_sp_mss_index(s.mss);

	isn = ntohl(th->seq);
	th->seq = htonl(ip_vs_sp_cookie(af, &iph->saddr, &iph->daddr,
					th->source, th->dest, isn, s.data));
	th->ack_seq = htonl(isn + 1);
	port = th->source;
	th->source = th->dest;
	th->dest = port;
	tcp_flag_word(th) &= ~(TCP_FLAG_CWR | TCP_FLAG_ECE | TCP_FLAG_URG |
			       TCP_FLAG_PSH | TCP_FLAG_RST | TCP_FLAG_FIN);
	tcp_flag_word(th) |= TCP_FLAG_SYN | TCP_FLAG_ACK;
	th->urg_ptr = 0;

	tmp = iph->saddr;
	if (af == AF_INET6) {
		struct ipv6hdr *ip6 = ipv6_hdr(skb);

		ip6->saddr = iph->daddr.in6;
		ip6->daddr = tmp.in6;
		ip6->hop_limit = READ_ONCE(ipvs->synproxy->sysctl_synack_ttl);
		ip6_flow_hdr(ip6, 0, 0);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->payload_len = htons(hlen);
	} else {
		struct iphdr *ip = ip_hdr(skb);

		ip->saddr = iph->daddr.ip;
		ip->daddr = tmp.ip;
		ip->ttl = READ_ONCE(ipvs->synproxy->sysctl_synack_ttl);
		ip->ihl = sizeof(*ip) / 4;
		ip->tos = 0;
		ip->id = 0;
		ip->frag_off = htons(IP_DF);
		ip->tot_len = htons(thoff + hlen);
		ip_send_check(ip);
	}
	ip_vs_sp_tcp_csum(skb, af, thoff);
	if (ip_vs_sp_route_send(skb, af, ipvs->net))
		goto drop;
	return NF_STOLEN;

drop:
	kfree_skb(skb);
	return NF_STOLEN;
}

/* Build a packet to the real server as the client would send it, from the
 * connection's client address to its VIP, with the mark and route of tmpl:
 * the SYN (the client's ISN, options from the cookie's data), or with ack
 * the ACK of the real server's SYN-ACK whose sequence number is rs_seq.
 */
static struct sk_buff *ip_vs_sp_rs_pkt(struct ip_vs_conn *cp,
				       struct sk_buff *tmpl, bool ack,
				       u32 rs_seq)
{
	unsigned int iplen = cp->af == AF_INET6 ? sizeof(struct ipv6hdr) :
						  sizeof(struct iphdr);
	u32 seq = cp->sp->cisn, data = cp->sp->data;
	struct sk_buff *skb;
	struct tcphdr *th;
	unsigned int tlen;
	u8 *opt;

	skb = alloc_skb(LL_MAX_HEADER + 64 + iplen + 60, GFP_ATOMIC);
	if (!skb)
		return NULL;
	skb_reserve(skb, LL_MAX_HEADER + 64);
	skb_reset_network_header(skb);
	skb_put(skb, iplen);
	skb_set_transport_header(skb, iplen);
	th = skb_put_zero(skb, sizeof(*th));
	th->source = cp->cport;
	th->dest = cp->vport;
	if (ack) {
		th->seq = htonl(seq + 1);
		th->ack_seq = htonl(rs_seq + 1);
		th->ack = 1;
		th->window = htons(1024);
		th->doff = sizeof(*th) / 4;
		goto ip;
	}
	th->seq = htonl(seq);
	th->syn = 1;
	th->window = htons(5000);
	opt = skb_put(skb, TCPOLEN_MSS);
	opt[0] = TCPOPT_MSS;
	opt[1] = TCPOLEN_MSS;
	put_unaligned_be16(ip_vs_sp_msstab[IP_VS_SP_D_MSS(data)], opt + 2);
	/* SACK permission shares the timestamp's padding, as Linux lays
	 * them out: with TOA for IPv6 every byte of the 40 is taken
	 */
	if (cp->sp->flags & IP_VS_SP_F_TS) {
		opt = skb_put(skb, 2 + TCPOLEN_TIMESTAMP);
		if (data & IP_VS_SP_D_SACK) {
			opt[0] = TCPOPT_SACK_PERM;
			opt[1] = TCPOLEN_SACK_PERM;
		} else {
			opt[0] = TCPOPT_NOP;
			opt[1] = TCPOPT_NOP;
		}
		opt[2] = TCPOPT_TIMESTAMP;
		opt[3] = TCPOLEN_TIMESTAMP;
		put_unaligned_be32(cp->sp->ts_syn, opt + 4);
		put_unaligned_be32(0, opt + 8);
	} else if (data & IP_VS_SP_D_SACK) {
		opt = skb_put(skb, 4);
		opt[0] = TCPOPT_NOP;
		opt[1] = TCPOPT_NOP;
		opt[2] = TCPOPT_SACK_PERM;
		opt[3] = TCPOLEN_SACK_PERM;
	}
	if (IP_VS_SP_D_WS(data) != IP_VS_SP_WS_NONE) {
		opt = skb_put(skb, 4);
		opt[0] = TCPOPT_NOP;
		opt[1] = TCPOPT_WINDOW;
		opt[2] = TCPOLEN_WINDOW;
		opt[3] = IP_VS_SP_D_WS(data);
	}
	th->doff = (skb->len - iplen) / 4;
ip:
	tlen = skb->len - iplen;
	if (cp->af == AF_INET6) {
		struct ipv6hdr *ip6 = ipv6_hdr(skb);

		ip6_flow_hdr(ip6, 0, 0);
		ip6->payload_len = htons(tlen);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		ip6->saddr = cp->caddr.in6;
		ip6->daddr = cp->vaddr.in6;
		skb->protocol = htons(ETH_P_IPV6);
	} else {
		struct iphdr *ip = ip_hdr(skb);

		ip->version = 4;
		ip->ihl = 5;
		ip->tos = ack ? 0 : ip_hdr(tmpl)->tos & ~INET_ECN_MASK;
		ip->tot_len = htons(skb->len);
		ip->id = 0;
		ip->frag_off = htons(IP_DF);
		ip->ttl = IPDEFTTL;
		ip->protocol = IPPROTO_TCP;
		ip->saddr = cp->caddr.ip;
		ip->daddr = cp->vaddr.ip;
		ip_send_check(ip);
		skb->protocol = htons(ETH_P_IP);
	}
	ip_vs_sp_tcp_csum(skb, cp->af, iplen);
	skb->dev = tmpl->dev;
	skb->mark = tmpl->mark;
	skb->skb_iif = tmpl->skb_iif;
	skb_dst_copy(skb, tmpl);
	return skb;
}

/* A client packet on its way to the real server, through the connection's
 * transmitter; consumes skb.
 */
static void ip_vs_sp_xmit(struct ip_vs_conn *cp, struct ip_vs_proto_data *pd,
			  struct sk_buff *skb)
{
	struct ip_vs_iphdr iph;

	ip_vs_fill_iph_skb(cp->af, skb, false, &iph);
	if (pd->pp->state_transition)
		pd->pp->state_transition(cp, IP_VS_DIR_INPUT, skb, pd, iph.len);
	if (!cp->packet_xmit ||
	    cp->packet_xmit(skb, cp, pd->pp, &iph) != NF_STOLEN)
		kfree_skb(skb);
}

/* A client packet waits for the real server: it keeps its route, but neither
 * its device, which may go away meanwhile, nor its conntrack entry.
 */
static bool ip_vs_sp_hold(struct sk_buff *skb)
{
	if (!skb_dst_force(skb))
		return false;
	nf_reset_ct(skb);
	skb->dev = NULL;
	return true;
}

/* May another SYN go to the real server?  Called with ack_q.lock held. */
static bool ip_vs_sp_may_resend(struct ip_vs_conn *cp)
{
	return (cp->sp->flags & (IP_VS_SP_F_OPEN | IP_VS_SP_F_EST |
				IP_VS_SP_F_CLOSING)) == IP_VS_SP_F_OPEN &&
	       cp->sp->retries < READ_ONCE(cp->ipvs->synproxy->sysctl_syn_retry);
}

/* No more SYNs to the real server: the retransmission timer goes, and with
 * it its reference.  closing: for good (the connection ends).
 */
static void ip_vs_sp_stop(struct ip_vs_conn *cp, bool closing)
{
	if (closing) {
		spin_lock_bh(&cp->sp->ack_q.lock);
		WRITE_ONCE(cp->sp->flags, cp->sp->flags | IP_VS_SP_F_CLOSING);
		spin_unlock_bh(&cp->sp->ack_q.lock);
	}
	if (timer_delete(&cp->sp->timer))
		__ip_vs_conn_put(cp);
}

/* The real server or the client has spoken since the handshake's ACK: no
 * more repeats of it.
 */
static void ip_vs_sp_ack_heard(struct ip_vs_conn *cp)
{
	if (likely(!(READ_ONCE(cp->sp->flags) & IP_VS_SP_F_ACKWAIT)))
		return;
	spin_lock_bh(&cp->sp->ack_q.lock);
	WRITE_ONCE(cp->sp->flags, cp->sp->flags & ~IP_VS_SP_F_ACKWAIT);
	__skb_queue_purge(&cp->sp->ack_q);
	spin_unlock_bh(&cp->sp->ack_q.lock);
	if (timer_delete(&cp->sp->timer))
		__ip_vs_conn_put(cp);
}

struct ip_vs_sp_ts {
	bool found;
	u32 val, ecr;
};

static void ip_vs_sp_get_ts(u8 *opt, int len, void *arg)
{
	struct ip_vs_sp_ts *ts = arg;

	if (len != TCPOLEN_TIMESTAMP)
		return;
	ts->found = true;
	ts->val = get_unaligned_be32(opt + 2);
	ts->ecr = get_unaligned_be32(opt + 6);
}

/* Timestamps were negotiated with the client: the ACK's TSecr is our
 * SYN-ACK's TSval, and the SYN to the real server carries the client's
 * TSval (NAT) or the director's clock from the local address (FULLNAT).
 */
static void ip_vs_sp_open_ts(struct ip_vs_conn *cp, struct tcphdr *th)
{
	struct ip_vs_sp_ts ts = { };

	ip_vs_tcp_opts(th, TCPOPT_TIMESTAMP, ip_vs_sp_get_ts, &ts);
	if (!ts.found)
		return;		/* the client dropped them: none from here on */
	cp->sp->ts_ours = ts.ecr;
	if (IP_VS_FWD_METHOD(cp) == IP_VS_CONN_F_FULLNAT)
		cp->sp->ts_coff = ip_vs_sp_ts_now(cp->af, &cp->fnat.lip,
						  &cp->daddr) - ts.val;
	cp->sp->ts_syn = ts.val + cp->sp->ts_coff;
	WRITE_ONCE(cp->sp->flags, cp->sp->flags | IP_VS_SP_F_TS);
}

/* An ACK from the client on cp before the real server has answered: kept
 * in ack_q until it does (at most synproxy_ack_skb_store_thresh of them);
 * a late SYN-ACK makes us send our SYN again.  NF_STOLEN when kept, NF_DROP
 * when not, NF_ACCEPT when the real server has answered meanwhile.
 */
static unsigned int ip_vs_sp_wait(struct ip_vs_conn *cp, struct sk_buff *skb,
				  struct ip_vs_proto_data *pd,
				  const struct tcphdr *th)
{
	struct ip_vs_synproxy_net *sp = cp->ipvs->synproxy;
	struct sk_buff_head *q = &cp->sp->ack_q;
	struct sk_buff *syn = NULL;

	spin_lock_bh(&q->lock);
	if (cp->sp->flags & IP_VS_SP_F_EST) {
		spin_unlock_bh(&q->lock);
		return NF_ACCEPT;
	}
	/* the client retransmits: the real server's SYN-ACK is late */
	if (ip_vs_sp_may_resend(cp) &&
	    time_after(jiffies, cp->sp->syn_sent + HZ)) {
		syn = ip_vs_sp_rs_pkt(cp, skb, false, 0);
		if (syn) {
			cp->sp->retries++;
			cp->sp->syn_sent = jiffies;
		}
	}
	if (skb_queue_len(q) >= READ_ONCE(sp->sysctl_ack_skb_store_thresh) ||
	    !ip_vs_sp_hold(skb)) {
		spin_unlock_bh(&q->lock);
		IP_VS_SP_INC(cp->ipvs, SYNPROXY_SYNSEND_QLEN);
		skb = NULL;
	} else {
		__skb_queue_tail(q, skb);
		spin_unlock_bh(&q->lock);
	}
	if (syn) {
		IP_VS_SP_INC(cp->ipvs, SYNPROXY_RS_ERROR);
		ip_vs_sp_xmit(cp, pd, syn);
	}
	return skb ? NF_STOLEN : NF_DROP;
}

/* What ip_vs_sp_open() knows of a connection before ip_vs_schedule() creates
 * and hashes it: ip_vs_synproxy_conn_init() takes it on the same CPU, with
 * BHs off, so the connection is a SYNPROXY one from its first moment in the
 * table, whatever another CPU finds there.
 */
struct ip_vs_sp_new {
	u32 isn, cisn, data;
	u8 c_wscale, d_wscale;
	struct ip_vs_synproxy_conn *sp;	/* allocated for the connection */
};

static DEFINE_PER_CPU(struct ip_vs_sp_new *, ip_vs_sp_new);

/* The connection another packet of the same handshake (n) has just opened
 * on another CPU: the ACK and the first data can miss the table together.
 * Called with the stripe of n.isn held, which serializes the look-up with
 * the other packet's ip_vs_schedule().  A reference is held on the result.
 */
static struct ip_vs_conn *ip_vs_sp_opened(struct ip_vs_service *svc,
					  struct ip_vs_proto_data *pd,
					  struct sk_buff *skb,
					  struct ip_vs_iphdr *iph,
					  const struct ip_vs_sp_new *n)
{
	struct ip_vs_synproxy_conn *sp;
	struct ip_vs_conn *cp;

	cp = pd->pp->conn_in_get(svc->ipvs, svc->af, skb, iph);
	sp = cp ? ip_vs_sp_of(cp) : NULL;
	if (cp && (!sp || sp->isn != n->isn || sp->cisn != n->cisn)) {
		/* an older connection with the same ports (a reuse) */
		ip_vs_conn_put(cp);
		cp = NULL;
	}
	return cp;
}

/* The client's ACK carried a valid cookie (data): create the connection,
 * keep the ACK until the real server answers and send it our SYN.  When no
 * real server can be scheduled the client gets a RST.  True when the packet
 * was taken, *verdict then says what to do with it (NF_STOLEN: a connection
 * was opened); false when nothing happened, *verdict is then left as it was.
 * When another packet of the handshake opened the connection first, true
 * with *opened set to it (and a reference held): the packet is that
 * connection's.
 */
static bool ip_vs_sp_open(struct ip_vs_service *svc, struct sk_buff *skb,
			  struct ip_vs_proto_data *pd, struct ip_vs_iphdr *iph,
			  int data, int *verdict, struct ip_vs_conn **opened)
{
	struct netns_ipvs *ipvs = svc->ipvs;
	struct ip_vs_synproxy_net *sp = ipvs->synproxy;
	struct ip_vs_sp_new n;
	struct ip_vs_conn *cp;
	struct sk_buff *syn;
	struct tcphdr *th;
	spinlock_t *lock;	/* the stripe of the handshake */
	int ignored;

	th = ip_vs_tcp_writable(skb, iph->len);
	if (!th)
		return false;
	/* synproxy_defer: wait for the first data before bothering the RS */
	if (READ_ONCE(sp->sysctl_defer) && skb->len <= iph->len + th->doff * 4) {
		IP_VS_SP_INC(ipvs, SYNPROXY_NULL_ACK);
		return false;
	}

	n.isn = ntohl(th->ack_seq) - 1;
	n.cisn = ntohl(th->seq) - 1;
	n.data = data;
	n.c_wscale = IP_VS_SP_D_WS(data);
	n.d_wscale = READ_ONCE(sp->sysctl_wscale);
	/* the cookie is a keyed hash of the handshake: its stripe */
	lock = &sp->open_lock[n.isn & (IP_VS_SP_OPEN_LOCKS - 1)];
	spin_lock_bh(lock);
	cp = ip_vs_sp_opened(svc, pd, skb, iph, &n);
	if (cp) {
		spin_unlock_bh(lock);
		*opened = cp;
		return true;
	}
	IP_VS_SP_INC(ipvs, SYNPROXY_OK_ACK);
	/* drop_entry: the director is short of memory */
	if (ip_vs_todrop(ipvs)) {
		spin_unlock_bh(lock);
		return false;
	}
	n.sp = ip_vs_synproxy_conn_alloc();
	if (!n.sp) {
		spin_unlock_bh(lock);
		return false;
	}
	this_cpu_write(ip_vs_sp_new, &n);
	cp = ip_vs_schedule(svc, skb, pd, &ignored, iph);
	this_cpu_write(ip_vs_sp_new, NULL);
	spin_unlock_bh(lock);
	/* no connection took it (none was created, or it failed after
	 * ip_vs_synproxy_conn_init() had given it the state)
	 */
	if (!cp || cp->sp != n.sp)
		kfree(n.sp);
	if (cp && !(cp->flags & IP_VS_CONN_F_SYNPROXY)) {
		ip_vs_conn_put(cp);
		cp = NULL;
	}
	if (!cp) {
		/* no real server or local port: the client learns it now */
		IP_VS_SP_INC(ipvs, SYNPROXY_NO_DEST);
		ip_vs_refuse_client(ipvs, svc->af, IPPROTO_TCP, skb);
		*verdict = NF_DROP;
		return true;
	}

	spin_lock_bh(&cp->sp->ack_q.lock);
	/* timestamps need the local address FULLNAT has just bound */
	if (data & IP_VS_SP_D_TS)
		ip_vs_sp_open_ts(cp, th);
	syn = ip_vs_sp_rs_pkt(cp, skb, false, 0);
	cp->sp->syn_sent = jiffies;
	WRITE_ONCE(cp->sp->flags, cp->sp->flags | IP_VS_SP_F_OPEN);
	if (ip_vs_sp_hold(skb)) {
		__skb_queue_tail(&cp->sp->ack_q, skb);
		skb = NULL;
	}
	if (syn && ip_vs_sp_may_resend(cp)) {
		/* the retransmission timer holds a reference */
		refcount_inc(&cp->refcnt);
		mod_timer(&cp->sp->timer, jiffies + IP_VS_SP_RETRY_TIME);
	}
	spin_unlock_bh(&cp->sp->ack_q.lock);
	kfree_skb(skb);		/* when it could not wait */
	if (syn)
		ip_vs_sp_xmit(cp, pd, syn);
	ip_vs_conn_put(cp);
	*verdict = NF_STOLEN;
	return true;
}

/* Defences (the defence_*_drop sysctls).  Their scope is the addresses of
 * SYNPROXY TCP services, which are there for their services only: TCP
 * without a connection to a port with no TCP service, and UDP to a port
 * with no UDP service, are dropped there instead of reaching the director's
 * own stack (and its RSTs and ICMP errors).  The set of those addresses is
 * changed under the service mutex and read under RCU.
 */
struct ip_vs_sp_vip {
	struct hlist_node	node;
	struct rcu_head		rcu;
	union nf_inet_addr	addr;
	int			af;
	unsigned int		refs;	/* SYNPROXY TCP services on addr */
};

static u32 ip_vs_sp_vip_hash(int af, const union nf_inet_addr *a)
{
	if (af == AF_INET6)
		return hash_32(ipv6_addr_hash(&a->in6), IP_VS_SP_VIP_BITS);
	return hash_32((__force u32)a->ip, IP_VS_SP_VIP_BITS);
}

static struct ip_vs_sp_vip *ip_vs_sp_vip_find(struct ip_vs_synproxy_net *sp,
					      int af,
					      const union nf_inet_addr *a)
{
	struct ip_vs_sp_vip *v;

	hlist_for_each_entry_rcu(v, &sp->vips[ip_vs_sp_vip_hash(af, a)], node,
				 lockdep_is_held(ip_vs_service_mutex(sp->ipvs)))
		if (v->af == af && ip_vs_addr_equal(af, &v->addr, a))
			return v;
	return NULL;
}

/* The flags of svc change (0 before it is created, after it is deleted):
 * its address joins or leaves the set.  Called with the service mutex held.
 */
void ip_vs_synproxy_svc_flags(struct ip_vs_service *svc, unsigned int from,
			      unsigned int to)
{
	struct ip_vs_synproxy_net *sp = svc->ipvs->synproxy;
	bool was = from & IP_VS_SVC_F_SYNPROXY, is = to & IP_VS_SVC_F_SYNPROXY;
	struct ip_vs_sp_vip *v;

	if (!sp || was == is || svc->fwmark || svc->protocol != IPPROTO_TCP)
		return;
	v = ip_vs_sp_vip_find(sp, svc->af, &svc->addr);
	if (is) {
		if (v) {
			v->refs++;
			return;
		}
		v = kzalloc(sizeof(*v), GFP_KERNEL);
		if (!v)		/* the defences then leave the address alone */
			return;
		v->af = svc->af;
		v->addr = svc->addr;
		v->refs = 1;
		hlist_add_head_rcu(&v->node,
				   &sp->vips[ip_vs_sp_vip_hash(v->af, &v->addr)]);
		WRITE_ONCE(sp->nvips, sp->nvips + 1);
		return;
	}
	if (!v || --v->refs)
		return;
	hlist_del_rcu(&v->node);
	kfree_rcu(v, rcu);
	WRITE_ONCE(sp->nvips, sp->nvips - 1);
}

static bool ip_vs_sp_fwd_ok(unsigned int conn_flags)
{
	unsigned int fwd = conn_flags & IP_VS_CONN_F_FWD_MASK;

	return fwd == IP_VS_CONN_F_MASQ || fwd == IP_VS_CONN_F_FULLNAT;
}

/* SYNPROXY answers TCP only, and it must see the real server's answers
 * (NAT, FULLNAT): the other combinations are refused whichever part comes
 * first, the flag or the real server.  svc: the service edited or given a
 * real server, NULL while it is created; flags: its flags to be; udest: the
 * real server added or edited, or NULL.  Called with the service mutex held.
 */
bool ip_vs_synproxy_allowed(struct ip_vs_service *svc, u16 protocol,
			    unsigned int flags,
			    const struct ip_vs_dest_user_kern *udest)
{
	struct ip_vs_dest *dest;

	if (!(flags & IP_VS_SVC_F_SYNPROXY))
		return true;
	if (protocol != IPPROTO_TCP) {
		pr_info_ratelimited("SYNPROXY refused: %s service, only TCP services can have it\n",
				    ip_vs_proto_name(protocol));
		return false;
	}
	if (udest) {
		if (ip_vs_sp_fwd_ok(udest->conn_flags))
			return true;
		goto bad_fwd;
	}
	if (!svc)
		return true;
	list_for_each_entry(dest, &svc->destinations, n_list)
		if (!ip_vs_sp_fwd_ok(atomic_read(&dest->conn_flags)))
			goto bad_fwd;
	return true;

bad_fwd:
	pr_info_ratelimited("SYNPROXY refused: real servers of a SYNPROXY service must be NAT or FULLNAT\n");
	return false;
}

/* A packet without a connection or service to daddr: true when a defence
 * (its sysctl on) drops it, counted in item.
 */
static bool ip_vs_sp_defend(struct netns_ipvs *ipvs, int af,
			    struct ip_vs_iphdr *iph, int on, int item)
{
	struct ip_vs_synproxy_net *sp = ipvs->synproxy;

	if (!on || !READ_ONCE(sp->nvips) || ip_vs_iph_icmp(iph) ||
	    ip_vs_iph_inverse(iph) ||
	    !ip_vs_sp_vip_find(sp, af, &iph->daddr))
		return false;
	IP_VS_SP_INC(ipvs, item);
	return true;
}

/* defence_udp_drop: UDP to a port of a SYNPROXY address without a service */
bool ip_vs_synproxy_udp_drop(struct netns_ipvs *ipvs, int af,
			     struct ip_vs_iphdr *iph)
{
	return ipvs->synproxy &&
	       ip_vs_sp_defend(ipvs, af, iph,
			       READ_ONCE(ipvs->synproxy->sysctl_defence_udp_drop),
			       DEFENCE_UDP_DROP);
}

#define IP_VS_SP_OSPF		89	/* IP protocol number */

/* defence_frag_drop: every fragment but OSPF's, before reassembly */
static unsigned int ip_vs_sp_frag_hook(void *priv, struct sk_buff *skb,
				       const struct nf_hook_state *state)
{
	struct ip_vs_synproxy_net *sp = priv;

	if (state->pf == NFPROTO_IPV4) {
		const struct iphdr *iph = ip_hdr(skb);

		if (!ip_is_fragment(iph) || iph->protocol == IP_VS_SP_OSPF)
			return NF_ACCEPT;
	} else {
		unsigned short fragoff = 0;
		unsigned int thoff = 0;
		int flags = 0, proto;

		proto = ipv6_find_hdr(skb, &thoff, -1, &fragoff, &flags);
		if (!(flags & IP6_FH_F_FRAG) || proto == IP_VS_SP_OSPF)
			return NF_ACCEPT;
	}
	IP_VS_SP_INC(sp->ipvs, DEFENCE_IP_FRAG_DROP);
	return NF_DROP;
}

static const struct nf_hook_ops ip_vs_sp_frag_ops[] = {
	{
		.hook		= ip_vs_sp_frag_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP_PRI_CONNTRACK_DEFRAG - 1,
	},
	{
		.hook		= ip_vs_sp_frag_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP6_PRI_CONNTRACK_DEFRAG - 1,
	},
};

/* The hooks are there only while defence_frag_drop is on: they would see
 * every packet of the namespace.
 */
static DEFINE_MUTEX(ip_vs_sp_frag_mutex);

static int ip_vs_sp_frag_hooks(struct ip_vs_synproxy_net *sp, bool on)
{
	struct nf_hook_ops *ops;
	unsigned int i;
	int ret;

	lockdep_assert_held(&ip_vs_sp_frag_mutex);
	if (on == !!sp->frag_ops)
		return 0;
	if (!on) {
		nf_unregister_net_hooks(sp->ipvs->net, sp->frag_ops,
					ARRAY_SIZE(ip_vs_sp_frag_ops));
		/* a hook still running has sp and may look at its ops */
		synchronize_net();
		kfree(sp->frag_ops);
		sp->frag_ops = NULL;
		return 0;
	}
	ops = kmemdup(ip_vs_sp_frag_ops, sizeof(ip_vs_sp_frag_ops), GFP_KERNEL);
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < ARRAY_SIZE(ip_vs_sp_frag_ops); i++)
		ops[i].priv = sp;
	ret = nf_register_net_hooks(sp->ipvs->net, ops,
				    ARRAY_SIZE(ip_vs_sp_frag_ops));
	if (ret) {
		kfree(ops);
		return ret;
	}
	sp->frag_ops = ops;
	return 0;
}

static int ip_vs_sp_frag_sysctl(IP_VS_CTL_CONST struct ctl_table *table,
				int write,
				void *buffer, size_t *lenp, loff_t *ppos)
{
	struct ip_vs_synproxy_net *sp =
		container_of((int *)table->data, struct ip_vs_synproxy_net,
			     sysctl_defence_frag_drop);
	struct ctl_table tmp = *table;
	int val = READ_ONCE(sp->sysctl_defence_frag_drop), ret;

	tmp.data = &val;
	ret = proc_dointvec_minmax(&tmp, write, buffer, lenp, ppos);
	if (ret || !write)
		return ret;
	mutex_lock(&ip_vs_sp_frag_mutex);
	ret = ip_vs_sp_frag_hooks(sp, val);
	if (!ret)
		WRITE_ONCE(sp->sysctl_defence_frag_drop, val);
	mutex_unlock(&ip_vs_sp_frag_mutex);
	return ret;
}

/* The cookie an ACK acknowledges: its data bits, or < 0 when it is not ours */
static int ip_vs_sp_ack_cookie(int af, struct ip_vs_iphdr *iph,
			       const struct tcphdr *th)
{
	return ip_vs_sp_check(af, &iph->saddr, &iph->daddr, th->source,
			      th->dest, ntohl(th->seq) - 1,
			      ntohl(th->ack_seq) - 1);
}

/* A packet without a connection, to a SYNPROXY service.  True when it was
 * handled: then *verdict says what to do with skb, unless *cpp is set to the
 * connection the packet turned out to belong to (opened by another packet of
 * its handshake on another CPU; a reference is held) and the packet goes on
 * as one of that connection's.
 */
bool ip_vs_synproxy_schedule(struct netns_ipvs *ipvs, int af,
			     struct sk_buff *skb, struct ip_vs_proto_data *pd,
			     int *verdict, struct ip_vs_conn **cpp,
			     struct ip_vs_iphdr *iph)
{
	struct ip_vs_synproxy_net *sp = ipvs->synproxy;
	struct ip_vs_service *svc;
	struct tcphdr _th, *th;
	int data;

	if (!sp || ip_vs_iph_icmp(iph) || ip_vs_iph_inverse(iph) ||
	    iph->fragoffs)
		return false;
	th = skb_header_pointer(skb, iph->len, sizeof(_th), &_th);
	if (!th)
		return false;
	svc = ip_vs_service_find(ipvs, af, skb->mark, IPPROTO_TCP, &iph->daddr,
				 th->dest);
	if (!svc) {
		/* defence_tcp_drop: a port of a SYNPROXY address without one */
		if (!ip_vs_sp_defend(ipvs, af, iph,
				     READ_ONCE(sp->sysctl_defence_tcp_drop),
				     DEFENCE_TCP_DROP))
			return false;
		*verdict = NF_DROP;
		return true;
	}
	if (!(svc->flags & IP_VS_SVC_F_SYNPROXY))
		return false;

	if (th->syn && !th->ack && !th->rst && !th->fin) {
		if (!READ_ONCE(svc->num_dests)) {
			IP_VS_SP_INC(ipvs, SYNPROXY_NO_DEST);
			*verdict = NF_DROP;
			return true;
		}
		IP_VS_SP_INC(ipvs, SYNPROXY_SYN_CNT);
		*verdict = ip_vs_sp_synack(ipvs, af, skb, iph);
		return true;
	}
	if (!th->ack || th->syn || th->rst || th->fin) {
		if (READ_ONCE(sp->sysctl_defence_tcp_drop)) {
			IP_VS_SP_INC(ipvs, DEFENCE_TCP_DROP);
			*verdict = NF_DROP;
			return true;
		}
		return false;
	}

	/* an ACK: the third packet of a handshake, or an attack */
	*verdict = NF_DROP;
	data = ip_vs_sp_ack_cookie(af, iph, th);
	if (data < 0)
		IP_VS_SP_INC(ipvs, SYNPROXY_BAD_ACK);
	else
		ip_vs_sp_open(svc, skb, pd, iph, data, verdict, cpp);
	return true;
}

/* Connection reuse, per state of the old connection: the sysctl that allows
 * it (an offset in struct ip_vs_synproxy_net) and its counter.
 */
static const struct {
	size_t sysctl;
	int item;
} ip_vs_sp_reuse_tab[IP_VS_TCP_S_LAST] = {
#define IP_VS_SP_REUSE(state, field, counter)				\
	[state] = { offsetof(struct ip_vs_synproxy_net, field), counter }
	IP_VS_SP_REUSE(IP_VS_TCP_S_CLOSE, sysctl_conn_reuse_close,
		       SYNPROXY_CONN_REUSED_CLOSE),
	IP_VS_SP_REUSE(IP_VS_TCP_S_TIME_WAIT, sysctl_conn_reuse_time_wait,
		       SYNPROXY_CONN_REUSED_TIMEWAIT),
	IP_VS_SP_REUSE(IP_VS_TCP_S_FIN_WAIT, sysctl_conn_reuse_fin_wait,
		       SYNPROXY_CONN_REUSED_FINWAIT),
	IP_VS_SP_REUSE(IP_VS_TCP_S_CLOSE_WAIT, sysctl_conn_reuse_close_wait,
		       SYNPROXY_CONN_REUSED_CLOSEWAIT),
	IP_VS_SP_REUSE(IP_VS_TCP_S_LAST_ACK, sysctl_conn_reuse_last_ack,
		       SYNPROXY_CONN_REUSED_LASTACK),
#undef IP_VS_SP_REUSE
};

/* May a new handshake reopen cp (synproxy_conn_reuse and the sysctl of its
 * state)?  Its counter when it may, 0 when not.
 */
static int ip_vs_sp_reusable(struct ip_vs_conn *cp)
{
	struct ip_vs_synproxy_net *sp = cp->ipvs->synproxy;
	int item;

	if (!READ_ONCE(sp->sysctl_conn_reuse) ||
	    cp->state >= IP_VS_TCP_S_LAST)
		return 0;
	item = ip_vs_sp_reuse_tab[cp->state].item;
	if (!item ||
	    !READ_ONCE(*(int *)((char *)sp + ip_vs_sp_reuse_tab[cp->state].sysctl)))
		return 0;
	return item;
}

/* The ACK of a new handshake on an old connection with the same addresses
 * and ports: a client reusing its port while the old connection closes.
 * When the old one is in a state the synproxy_conn_reuse_* sysctls allow
 * and the ACK carries a valid cookie, a new connection is created for it
 * and the old one is left to expire.  True when the packet was taken;
 * *verdict then says what to do with skb.  Otherwise the packet is the old
 * connection's.
 */
static bool ip_vs_sp_reuse(struct ip_vs_conn *cp, struct sk_buff *skb,
			   struct ip_vs_proto_data *pd,
			   struct ip_vs_iphdr *iph, struct tcphdr *th,
			   unsigned int *verdict)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	struct ip_vs_conn *opened = NULL;
	struct ip_vs_service *svc;
	int item, data, v;

	item = ip_vs_sp_reusable(cp);
	if (!item)
		return false;
	/* the old handshake's own ACK, retransmitted */
	if (ip_vs_sp_of(cp) && ntohl(th->ack_seq) - 1 == cp->sp->isn)
		return false;
	/* no cookie: an ACK of the old connection (its last one, say) */
	data = ip_vs_sp_ack_cookie(cp->af, iph, th);
	if (data < 0)
		return false;
	svc = ip_vs_service_find(ipvs, cp->af, skb->mark, IPPROTO_TCP,
				 &iph->daddr, th->dest);
	if (!svc || !(svc->flags & IP_VS_SVC_F_SYNPROXY))
		return false;
	v = NF_DROP;
	if (ip_vs_sp_open(svc, skb, pd, iph, data, &v, &opened) && opened) {
		/* the handshake's other packet opened it on another CPU */
		v = ip_vs_sp_wait(opened, skb, pd, th);
		if (v == NF_ACCEPT)	/* established meanwhile: resent */
			v = NF_DROP;
		ip_vs_conn_put(opened);
	} else if (v == NF_STOLEN) {
		IP_VS_SP_INC(ipvs, SYNPROXY_CONN_REUSED);
		IP_VS_SP_INC(ipvs, item);
		/* The new connection is hashed in front of the old one,
		 * which lingers a second: the caller's ip_vs_conn_put()
		 * arms its timer with this (its expiry stops its own SYN
		 * retries, if any are left).
		 */
		cp->timeout = HZ;
	}
	*verdict = v;
	return true;
}

/* Translation of the options of a packet on a SYNPROXY connection: SACK
 * blocks less sack, TSval plus tsval, TSecr less tsecr
 */
struct ip_vs_sp_xlate {
	struct sk_buff *skb;
	struct tcphdr *th;
	u32 sack, tsval, tsecr;
	bool ts;
};

static void ip_vs_sp_xlate_opt(u8 *opt, int len, void *arg)
{
	struct ip_vs_sp_xlate *t = arg;
	int i;

	switch (opt[0]) {
	case TCPOPT_SACK:
		if (!t->sack ||
		    (len - TCPOLEN_SACK_BASE) % TCPOLEN_SACK_PERBLOCK)
			return;
		for (i = TCPOLEN_SACK_BASE; i < len; i += 4)
			ip_vs_sp_set32(t->skb, t->th, opt + i,
				       get_unaligned_be32(opt + i) - t->sack);
		return;
	case TCPOPT_TIMESTAMP:
		if (!t->ts || len != TCPOLEN_TIMESTAMP)
			return;
		ip_vs_sp_set32(t->skb, t->th, opt + 2,
			       get_unaligned_be32(opt + 2) + t->tsval);
		/* a zero TSecr echoes nothing */
		if (get_unaligned_be32(opt + 6))
			ip_vs_sp_set32(t->skb, t->th, opt + 6,
				       get_unaligned_be32(opt + 6) - t->tsecr);
		return;
	}
}

/* A new SYN meets an old connection that upstream's conn_reuse_mode=0 keeps
 * (or one in CLOSE after a RST, which it keeps too): passed on, the real
 * server's SYN-ACK would be taken for the old connection's.  Where a new
 * handshake may reopen it and the service has SYNPROXY, the director answers
 * as for any SYN, and the cookie's ACK opens the new connection
 * (ip_vs_sp_reuse()).
 */
static unsigned int ip_vs_sp_syn_on_old(struct ip_vs_conn *cp,
					struct sk_buff *skb,
					struct ip_vs_iphdr *iph,
					const struct tcphdr *th)
{
	struct ip_vs_service *svc;

	if (th->ack || th->rst || th->fin || !ip_vs_sp_reusable(cp))
		return NF_ACCEPT;
	svc = ip_vs_service_find(cp->ipvs, cp->af, skb->mark, IPPROTO_TCP,
				 &iph->daddr, th->dest);
	if (!svc || !(svc->flags & IP_VS_SVC_F_SYNPROXY))
		return NF_ACCEPT;
	IP_VS_SP_INC(cp->ipvs, SYNPROXY_SYN_CNT);
	return ip_vs_sp_synack(cp->ipvs, cp->af, skb, iph);
}

/* client -> real server, on a TCP connection that is not SYNPROXY's and
 * closes.  The client may reuse its port for a new handshake with SYNPROXY
 * (enabled on the service since, say) while the old connection lingers:
 * upstream's conn_reuse_mode expires it when the SYN arrives, but the timer
 * runs a tick later and the ACK with our cookie can come first.  That ACK
 * opens the new connection, and with conn_reuse_mode=0 the SYN gets a cookie
 * as on a SYNPROXY connection; every other packet is the old one's.
 */
static unsigned int ip_vs_sp_in_closing(struct sk_buff *skb,
					struct ip_vs_conn *cp,
					struct ip_vs_proto_data *pd,
					struct ip_vs_iphdr *iph)
{
	struct tcphdr _th, *th;
	unsigned int verdict;

	if (!READ_ONCE(cp->ipvs->synproxy->nvips))
		return NF_ACCEPT;
	th = skb_header_pointer(skb, iph->len, sizeof(_th), &_th);
	if (!th)
		return NF_ACCEPT;
	if (th->syn)
		return ip_vs_sp_syn_on_old(cp, skb, iph, th);
	if (!th->ack || th->rst || th->fin)
		return NF_ACCEPT;
	if (ip_vs_sp_reuse(cp, skb, pd, iph, th, &verdict))
		return verdict;
	return NF_ACCEPT;
}

/* client -> real server, on a SYNPROXY connection or, through
 * ip_vs_synproxy_in_watch(), on a TCP connection that closes
 */
unsigned int ip_vs_synproxy_in(struct sk_buff *skb, struct ip_vs_conn *cp,
			       struct ip_vs_proto_data *pd,
			       struct ip_vs_iphdr *iph)
{
	struct ip_vs_sp_xlate t = { };
	struct tcphdr *th;

	if (cp->protocol != IPPROTO_TCP || iph->fragoffs ||
	    ip_vs_iph_icmp(iph))
		return NF_ACCEPT;
	if (!(cp->flags & IP_VS_CONN_F_SYNPROXY) || !ip_vs_sp_of(cp))
		return ip_vs_sp_in_closing(skb, cp, pd, iph);
	th = ip_vs_tcp_writable(skb, iph->len);
	if (!th)
		return NF_DROP;

	/* pairs with the release in ip_vs_synproxy_out: delta is valid */
	if (!(smp_load_acquire(&cp->sp->flags) & IP_VS_SP_F_EST)) {
		unsigned int v;

		if (th->rst) {
			/* the client gives up: so do we */
			ip_vs_sp_stop(cp, true);
			skb_queue_purge(&cp->sp->ack_q);
			return NF_ACCEPT;
		}
		if (th->syn || !th->ack)
			return NF_DROP;
		v = ip_vs_sp_wait(cp, skb, pd, th);
		if (v != NF_ACCEPT)
			return v;
	}

	if (th->syn)
		return ip_vs_sp_syn_on_old(cp, skb, iph, th);
	ip_vs_sp_ack_heard(cp);
	if (th->ack && !th->rst && !th->fin) {
		unsigned int verdict;

		if (ip_vs_sp_reuse(cp, skb, pd, iph, th, &verdict))
			return verdict;
	}
	t.skb = skb;
	t.th = th;
	t.sack = th->ack ? cp->sp->delta : 0;
	if (cp->sp->flags & IP_VS_SP_F_TS) {
		t.ts = true;
		t.tsval = cp->sp->ts_coff;
		t.tsecr = cp->sp->ts_soff;
	}
	if (th->ack)
		ip_vs_sp_set32(skb, th, &th->ack_seq,
			       ntohl(th->ack_seq) - cp->sp->delta);
	/* SACK blocks name the real server's sequence numbers */
	if (th->ack || t.ts)
		ip_vs_tcp_opts(th, 0, ip_vs_sp_xlate_opt, &t);
	/* the client scales its window, the real server does not */
	if (cp->sp->c_wscale != IP_VS_SP_WS_NONE &&
	    cp->sp->rs_wscale == IP_VS_SP_WS_NONE && cp->sp->c_wscale)
		ip_vs_sp_set_window(skb, th,
				    (u32)ntohs(th->window) << cp->sp->c_wscale);
	return NF_ACCEPT;
}

static void ip_vs_sp_rs_wscale(u8 *opt, int len, void *arg)
{
	if (len == TCPOLEN_WINDOW)
		*(u8 *)arg = min_t(u8, opt[2], TCP_MAX_WSCALE);
}

/* Is skb, a client packet that waited, a bare ACK (no data, FIN or RST)? */
static bool ip_vs_sp_bare_ack(struct ip_vs_conn *cp, struct sk_buff *skb)
{
	struct ip_vs_iphdr iph;
	struct tcphdr _th, *th;

	ip_vs_fill_iph_skb(cp->af, skb, false, &iph);
	th = skb_header_pointer(skb, iph.len, sizeof(_th), &_th);
	return th && th->ack && !th->syn && !th->fin && !th->rst &&
	       skb->len <= iph.len + th->doff * 4;
}

/* Send the client packets that waited for the real server.  When they
 * were bare ACKs, the client waits for the server to speak first and will
 * not send anything that repeats the handshake's ACK if it is lost on its
 * way (a real server answering with SYN cookies keeps no state that would
 * ask for it again): the director repeats it while the real server stays
 * silent, with the first packet's route (kept in ack_q), until the real
 * server or the client sends something.
 */
static void ip_vs_sp_flush(struct ip_vs_conn *cp, struct ip_vs_proto_data *pd)
{
	struct sk_buff *skb, *tmpl = NULL;
	struct sk_buff_head list;
	bool bare = true;

	__skb_queue_head_init(&list);
	spin_lock_bh(&cp->sp->ack_q.lock);
	skb_queue_splice_init(&cp->sp->ack_q, &list);
	spin_unlock_bh(&cp->sp->ack_q.lock);

	skb_queue_walk(&list, skb)
		bare = bare && ip_vs_sp_bare_ack(cp, skb);
	if (bare && !skb_queue_empty(&list))
		tmpl = skb_clone(skb_peek(&list), GFP_ATOMIC);

	while ((skb = __skb_dequeue(&list))) {
		struct ip_vs_iphdr iph;

		ip_vs_fill_iph_skb(cp->af, skb, false, &iph);
		if (ip_vs_synproxy_in(skb, cp, pd, &iph) != NF_ACCEPT) {
			kfree_skb(skb);
			continue;
		}
		/* held on its way in, so not counted then */
		ip_vs_in_stats(cp, skb);
		ip_vs_sp_xmit(cp, pd, skb);
	}

	if (!tmpl)
		return;
	spin_lock_bh(&cp->sp->ack_q.lock);
	if (!(cp->sp->flags & IP_VS_SP_F_CLOSING) &&
	    skb_queue_empty(&cp->sp->ack_q)) {
		__skb_queue_tail(&cp->sp->ack_q, tmpl);
		tmpl = NULL;
		cp->sp->acks = 0;
		WRITE_ONCE(cp->sp->flags, cp->sp->flags | IP_VS_SP_F_ACKWAIT);
		/* the timer holds a reference while it is pending */
		if (!mod_timer(&cp->sp->timer, jiffies + IP_VS_SP_ACK_TIME))
			refcount_inc(&cp->refcnt);
	}
	spin_unlock_bh(&cp->sp->ack_q.lock);
	kfree_skb(tmpl);
}

/* real server -> client, on a SYNPROXY connection; NF_ACCEPT: go on */
unsigned int ip_vs_synproxy_out(struct sk_buff *skb, struct ip_vs_conn *cp,
				struct ip_vs_proto_data *pd,
				struct ip_vs_iphdr *iph)
{
	struct ip_vs_synproxy_net *sp = cp->ipvs->synproxy;
	struct tcphdr *th;
	u32 seq, thresh;
	u8 rs_ws;

	if (cp->protocol != IPPROTO_TCP || iph->fragoffs ||
	    ip_vs_iph_icmp(iph) || !ip_vs_sp_of(cp))
		return NF_ACCEPT;
	th = ip_vs_tcp_writable(skb, iph->len);
	if (!th)
		return NF_DROP;
	seq = ntohl(th->seq);

	/* pairs with the release below */
	if (!(smp_load_acquire(&cp->sp->flags) & IP_VS_SP_F_EST)) {
		if (th->syn && th->ack) {
			struct ip_vs_sp_ts ts = { };
			u8 flags = IP_VS_SP_F_EST | IP_VS_SP_F_OPEN |
				   (READ_ONCE(cp->sp->flags) & IP_VS_SP_F_TS);

			rs_ws = IP_VS_SP_WS_NONE;
			if (cp->sp->c_wscale != IP_VS_SP_WS_NONE)
				ip_vs_tcp_opts(th, TCPOPT_WINDOW,
					       ip_vs_sp_rs_wscale, &rs_ws);
			cp->sp->rs_wscale = rs_ws;
			cp->sp->delta = cp->sp->isn - seq;
			/* the client sees our clock, not the real server's;
			 * a real server without timestamps gets none
			 */
			if (flags & IP_VS_SP_F_TS) {
				ip_vs_tcp_opts(th, TCPOPT_TIMESTAMP,
					       ip_vs_sp_get_ts, &ts);
				if (ts.found)
					cp->sp->ts_soff = cp->sp->ts_ours - ts.val;
				else
					flags &= ~IP_VS_SP_F_TS;
			}
			if (IP_VS_FWD_METHOD(cp) == IP_VS_CONN_F_FULLNAT)
				ip_vs_fnat_fdata(cp, seq + 1);
			if (pd->pp->state_transition)
				pd->pp->state_transition(cp, IP_VS_DIR_OUTPUT,
							 skb, pd, iph->len);
			spin_lock_bh(&cp->sp->ack_q.lock);
			/* delta, rs_wscale and ts_soff before the flag */
			smp_store_release(&cp->sp->flags,
					  flags | (cp->sp->flags &
						   IP_VS_SP_F_CLOSING));
			spin_unlock_bh(&cp->sp->ack_q.lock);
			ip_vs_sp_stop(cp, false);
			ip_vs_sp_flush(cp, pd);
			kfree_skb(skb);
			return NF_STOLEN;
		}
		if (!th->rst)
			return NF_DROP;
		/* refused: the client sees a RST that fits its window */
		IP_VS_SP_INC(cp->ipvs, SYNPROXY_RS_ERROR);
		cp->sp->delta = cp->sp->isn + 1 - seq;
		cp->sp->rs_wscale = IP_VS_SP_WS_NONE;
		spin_lock_bh(&cp->sp->ack_q.lock);
		/* delta before the flag */
		smp_store_release(&cp->sp->flags,
				  cp->sp->flags | IP_VS_SP_F_EST);
		__skb_queue_purge(&cp->sp->ack_q);
		spin_unlock_bh(&cp->sp->ack_q.lock);
		ip_vs_sp_stop(cp, false);
	}

	/* A SYN-ACK again, answering a resent SYN or because the client's ACK
	 * we passed on was lost: the client has had ours, and one that waits
	 * for the server to speak first sends nothing that would repeat its
	 * ACK, so the director acknowledges it.
	 */
	if (th->syn) {
		struct sk_buff *ack = NULL;

		if (th->ack && !th->rst)
			ack = ip_vs_sp_rs_pkt(cp, skb, true, seq);
		if (ack)
			ip_vs_sp_xmit(cp, pd, ack);
		return NF_DROP;
	}

	ip_vs_sp_ack_heard(cp);

	/* ACK storm: the same pure ACK again and again */
	thresh = READ_ONCE(sp->sysctl_ack_storm_thresh);
	if (thresh && th->ack && !th->syn && !th->rst && !th->fin &&
	    skb->len == iph->len + th->doff * 4) {
		if (seq == cp->sp->last_seq &&
		    ntohl(th->ack_seq) == cp->sp->last_ack) {
			if (++cp->sp->dup_acks >= thresh) {
				IP_VS_SP_INC(cp->ipvs, SYNPROXY_ACK_STORM);
				return NF_DROP;
			}
		} else {
			cp->sp->last_seq = seq;
			cp->sp->last_ack = ntohl(th->ack_seq);
			cp->sp->dup_acks = 0;
		}
	}

	ip_vs_sp_set32(skb, th, &th->seq, seq + cp->sp->delta);
	if (cp->sp->flags & IP_VS_SP_F_TS) {
		struct ip_vs_sp_xlate t = {
			.skb = skb,
			.th = th,
			.tsval = cp->sp->ts_soff,
			.tsecr = cp->sp->ts_coff,
			.ts = true,
		};

		ip_vs_tcp_opts(th, TCPOPT_TIMESTAMP, ip_vs_sp_xlate_opt, &t);
	}
	if (cp->sp->c_wscale != IP_VS_SP_WS_NONE) {
		u32 rs = cp->sp->rs_wscale == IP_VS_SP_WS_NONE ? 0 :
			 cp->sp->rs_wscale;

		if (rs != cp->sp->d_wscale)
			ip_vs_sp_set_window(skb, th,
					    ((u32)ntohs(th->window) << rs) >>
					    cp->sp->d_wscale);
	}
	return NF_ACCEPT;
}

/* The real server has not answered our SYN: send it again, with the
 * addresses and route of the first client packet that waits.  The timer
 * holds a reference on the connection while it is pending.
 */
static void ip_vs_sp_retry(struct timer_list *t)
{
	struct ip_vs_synproxy_conn *sp = timer_container_of(sp, t, timer);
	struct ip_vs_conn *cp = sp->cp;
	struct sk_buff_head *q = &sp->ack_q;
	struct ip_vs_proto_data *pd;
	struct sk_buff *syn = NULL;
	bool again = false, ack = false;

	spin_lock(&q->lock);
	if (ip_vs_sp_may_resend(cp) && !skb_queue_empty(q)) {
		syn = ip_vs_sp_rs_pkt(cp, skb_peek(q), false, 0);
		if (syn) {
			cp->sp->retries++;
			cp->sp->syn_sent = jiffies;
			/* a timer armed meanwhile has its own reference */
			again = ip_vs_sp_may_resend(cp) &&
				!mod_timer(&cp->sp->timer,
					   jiffies + IP_VS_SP_RETRY_TIME);
		}
	} else if ((cp->sp->flags & (IP_VS_SP_F_ACKWAIT |
				    IP_VS_SP_F_CLOSING)) ==
		   IP_VS_SP_F_ACKWAIT && !skb_queue_empty(q)) {
		/* the real server is silent since the handshake's ACK */
		syn = ip_vs_sp_rs_pkt(cp, skb_peek(q), true,
				      cp->sp->isn - cp->sp->delta);
		ack = true;
		if (++cp->sp->acks < IP_VS_SP_ACK_REPEATS) {
			/* ip_vs_sp_flush() may have armed it meanwhile */
			again = !mod_timer(&cp->sp->timer,
					   jiffies + IP_VS_SP_ACK_TIME);
		} else {
			WRITE_ONCE(cp->sp->flags,
				   cp->sp->flags & ~IP_VS_SP_F_ACKWAIT);
			__skb_queue_purge(q);
		}
	}
	spin_unlock(&q->lock);
	if (syn) {
		IP_VS_SP_INC(cp->ipvs, ack ? SYNPROXY_ACK_RESENT :
						    SYNPROXY_RS_ERROR);
		rcu_read_lock();
		pd = ip_vs_proto_data_get(cp->ipvs, IPPROTO_TCP);
		if (pd)
			ip_vs_sp_xmit(cp, pd, syn);
		else
			kfree_skb(syn);
		rcu_read_unlock();
	}
	if (!again)
		__ip_vs_conn_put(cp);
}

/* The state of a SYNPROXY connection, not yet anyone's (GFP_ATOMIC) */
struct ip_vs_synproxy_conn *ip_vs_synproxy_conn_alloc(void)
{
	struct ip_vs_synproxy_conn *sp = kzalloc(sizeof(*sp), GFP_ATOMIC);

	if (!sp)
		return NULL;
	timer_setup(&sp->timer, ip_vs_sp_retry, 0);
	skb_queue_head_init(&sp->ack_q);
	sp->c_wscale = IP_VS_SP_WS_NONE;
	sp->rs_wscale = IP_VS_SP_WS_NONE;
	return sp;
}

/* ip_vs_conn_new(), before the connection is hashed: the state
 * ip_vs_sp_open() allocated when it is creating cp, nothing otherwise
 */
void ip_vs_synproxy_conn_init(struct ip_vs_conn *cp)
{
	struct ip_vs_sp_new *n = this_cpu_read(ip_vs_sp_new);
	struct ip_vs_synproxy_conn *sp;

	cp->sp = NULL;
	/* a template is not a connection */
	if (!n || (cp->flags & IP_VS_CONN_F_TEMPLATE) ||
	    cp->protocol != IPPROTO_TCP)
		return;
	this_cpu_write(ip_vs_sp_new, NULL);
	sp = n->sp;
	sp->cp = cp;
	sp->isn = n->isn;
	sp->cisn = n->cisn;
	sp->data = n->data;
	sp->c_wscale = n->c_wscale;
	sp->d_wscale = n->d_wscale;
	cp->sp = sp;
	cp->flags |= IP_VS_CONN_F_SYNPROXY;
}

/* The connection's timer ran out or it is flushed: no more SYNs to the real
 * server, whose timer would otherwise keep it (and its netns) alive.
 */
void ip_vs_synproxy_conn_expire(struct ip_vs_conn *cp)
{
	if (ip_vs_sp_of(cp))
		ip_vs_sp_stop(cp, true);
}

/* The connection is unhashed and its last reference gone: the packets that
 * wait.  The state itself goes with the connection, after RCU readers.
 */
void ip_vs_synproxy_conn_free(struct ip_vs_conn *cp)
{
	if (cp->sp)
		skb_queue_purge(&cp->sp->ack_q);
}

/* An ICMP error from the client about a packet of the real server's, whose
 * TCP header starts at thoff: the quoted sequence number is the one the real
 * server sent.  False when the packet cannot be made writable.
 */
bool ip_vs_synproxy_icmp(struct sk_buff *skb, struct ip_vs_conn *cp,
			 unsigned int thoff)
{
	__be32 *seq;

	if (cp->protocol != IPPROTO_TCP || !ip_vs_sp_of(cp))
		return true;
	/* pairs with the release in ip_vs_synproxy_out: delta is valid */
	if (!(smp_load_acquire(&cp->sp->flags) & IP_VS_SP_F_EST))
		return true;
	if (skb_ensure_writable(skb, thoff + 8))
		return false;
	seq = (__be32 *)(skb->data + thoff + 4);
	*seq = htonl(ntohl(*seq) - cp->sp->delta);
	return true;
}

/* sysctls */

static int ip_vs_sp_zero;
static int ip_vs_sp_one = 1;
static int ip_vs_sp_five = 5;
static int ip_vs_sp_six = 6;
static int ip_vs_sp_14 = TCP_MAX_WSCALE;
static int ip_vs_sp_255 = 255;
static int ip_vs_sp_65535 = 65535;

#define IP_VS_SP_SYSCTL(name, field, lo, hi)				\
	{								\
		.procname	= name,					\
		.data		= (void *)offsetof(struct ip_vs_synproxy_net, field), \
		.maxlen		= sizeof(int),				\
		.mode		= 0644,					\
		.proc_handler	= proc_dointvec_minmax,			\
		.extra1		= lo,					\
		.extra2		= hi,					\
	}

static const struct ctl_table ip_vs_sp_vars[] = {
	IP_VS_SP_SYSCTL("synproxy_init_mss", sysctl_init_mss, &ip_vs_sp_zero,
			&ip_vs_sp_65535),
	IP_VS_SP_SYSCTL("synproxy_sack", sysctl_sack, &ip_vs_sp_zero,
			&ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_wscale", sysctl_wscale, &ip_vs_sp_zero,
			&ip_vs_sp_14),
	IP_VS_SP_SYSCTL("synproxy_timestamp", sysctl_timestamp,
			&ip_vs_sp_zero, &ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_synack_ttl", sysctl_synack_ttl,
			&ip_vs_sp_one, &ip_vs_sp_255),
	IP_VS_SP_SYSCTL("synproxy_defer", sysctl_defer, &ip_vs_sp_zero,
			&ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_conn_reuse", sysctl_conn_reuse,
			&ip_vs_sp_zero, &ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_conn_reuse_close", sysctl_conn_reuse_close,
			&ip_vs_sp_zero, &ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_conn_reuse_time_wait",
			sysctl_conn_reuse_time_wait, &ip_vs_sp_zero,
			&ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_conn_reuse_fin_wait",
			sysctl_conn_reuse_fin_wait, &ip_vs_sp_zero,
			&ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_conn_reuse_close_wait",
			sysctl_conn_reuse_close_wait, &ip_vs_sp_zero,
			&ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_conn_reuse_last_ack",
			sysctl_conn_reuse_last_ack, &ip_vs_sp_zero,
			&ip_vs_sp_one),
	IP_VS_SP_SYSCTL("synproxy_ack_skb_store_thresh",
			sysctl_ack_skb_store_thresh, &ip_vs_sp_zero,
			&ip_vs_sp_five),
	IP_VS_SP_SYSCTL("synproxy_ack_storm_thresh", sysctl_ack_storm_thresh,
			&ip_vs_sp_zero, &ip_vs_sp_65535),
	IP_VS_SP_SYSCTL("synproxy_syn_retry", sysctl_syn_retry,
			&ip_vs_sp_zero, &ip_vs_sp_six),
	IP_VS_SP_SYSCTL("defence_tcp_drop", sysctl_defence_tcp_drop,
			&ip_vs_sp_zero, &ip_vs_sp_one),
	IP_VS_SP_SYSCTL("defence_udp_drop", sysctl_defence_udp_drop,
			&ip_vs_sp_zero, &ip_vs_sp_one),
	{
		.procname	= "defence_frag_drop",
		.data		= (void *)offsetof(struct ip_vs_synproxy_net,
						   sysctl_defence_frag_drop),
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= ip_vs_sp_frag_sysctl,
		.extra1		= &ip_vs_sp_zero,
		.extra2		= &ip_vs_sp_one,
	},
	{ }
};

#define IP_VS_SP_NVARS (ARRAY_SIZE(ip_vs_sp_vars) - 1)

static int ip_vs_sp_sysctl_init(struct netns_ipvs *ipvs)
{
	struct ip_vs_synproxy_net *sp = ipvs->synproxy;
	struct ctl_table *tbl;
	unsigned int i;

	tbl = kmemdup(ip_vs_sp_vars, sizeof(ip_vs_sp_vars), GFP_KERNEL);
	if (!tbl)
		return -ENOMEM;
	for (i = 0; i < IP_VS_SP_NVARS; i++)
		tbl[i].data = (void *)sp + (unsigned long)tbl[i].data;
	if (ip_vs_sysctls_hidden(ipvs->net))
		tbl[0].procname = NULL;
	sp->sysctl_hdr = ip_vs_register_net_sysctl(ipvs->net, "net/ipv4/vs", tbl,
						   tbl[0].procname ? IP_VS_SP_NVARS : 0);
	if (!sp->sysctl_hdr) {
		kfree(tbl);
		return -ENOMEM;
	}
	sp->sysctl_tbl = tbl;
	return 0;
}

/* SYNPROXY counter names, as in /proc/net/ip_vs_ext_stats */

static const char * const ip_vs_sp_stat_names[IP_VS_SP_STAT_LAST] = {
	[SYNPROXY_RS_ERROR]	= "synproxy_rs_error",
	[SYNPROXY_NULL_ACK]	= "synproxy_null_ack",
	[SYNPROXY_BAD_ACK]	= "synproxy_bad_ack",
	[SYNPROXY_OK_ACK]	= "synproxy_ok_ack",
	[SYNPROXY_SYN_CNT]	= "synproxy_syn_cnt",
	[SYNPROXY_ACK_STORM]	= "synproxy_ackstorm",
	[SYNPROXY_SYNSEND_QLEN]	= "synproxy_synsend_qlen",
	[SYNPROXY_CONN_REUSED]	= "synproxy_conn_reused",
	[SYNPROXY_CONN_REUSED_CLOSE]	 = "synproxy_conn_reused_close",
	[SYNPROXY_CONN_REUSED_TIMEWAIT]	 = "synproxy_conn_reused_timewait",
	[SYNPROXY_CONN_REUSED_FINWAIT]	 = "synproxy_conn_reused_finwait",
	[SYNPROXY_CONN_REUSED_CLOSEWAIT] = "synproxy_conn_reused_closewait",
	[SYNPROXY_CONN_REUSED_LASTACK]	 = "synproxy_conn_reused_lastack",
	[DEFENCE_IP_FRAG_DROP]	= "defence_ip_frag_drop",
	[DEFENCE_TCP_DROP]	= "defence_tcp_drop",
	[DEFENCE_UDP_DROP]	= "defence_udp_drop",
	[SYNPROXY_NO_DEST]	= "synproxy_no_dest",
	[SYNPROXY_ACK_RESENT]	= "synproxy_ack_resent",
};

/* Our lines of /proc/net/ip_vs_ext_stats, printed by its owner after the
 * FULLNAT ones. The file is removed before ip_vs_synproxy_net_cleanup()
 * runs (the netns cleanup calls ip_vs_fnat_net_cleanup() first), so
 * ipvs->synproxy cannot go away under a reader.
 */
void ip_vs_synproxy_stats_lines(struct seq_file *seq, struct netns_ipvs *ipvs)
{
	int i, cpu;

	if (!ipvs->synproxy)
		return;
	for (i = 1; i < IP_VS_SP_STAT_LAST; i++) {
		seq_printf(seq, "%-25s:", ip_vs_sp_stat_names[i]);
		for_each_online_cpu(cpu)
			seq_printf(seq, "%10llu ",
				   per_cpu_ptr(ipvs->synproxy->stats,
					       cpu)->items[i]);
		seq_putc(seq, '\n');
	}
}

int ip_vs_synproxy_net_init(struct netns_ipvs *ipvs)
{
	struct ip_vs_synproxy_net *sp;
	unsigned int i;

	net_get_random_once(ip_vs_sp_key, sizeof(ip_vs_sp_key));
	sp = kzalloc(sizeof(*sp), GFP_KERNEL);
	if (!sp)
		return -ENOMEM;
	sp->sysctl_init_mss = 1452;
	sp->sysctl_sack = 1;
	sp->sysctl_synack_ttl = 63;
	sp->sysctl_conn_reuse = 1;
	sp->sysctl_conn_reuse_close = 1;
	sp->sysctl_conn_reuse_time_wait = 1;
	sp->sysctl_ack_skb_store_thresh = 3;
	sp->sysctl_ack_storm_thresh = 10;
	sp->sysctl_syn_retry = 3;
	sp->sysctl_defence_tcp_drop = 1;
	sp->sysctl_defence_udp_drop = 1;
	sp->ipvs = ipvs;
	for (i = 0; i < IP_VS_SP_OPEN_LOCKS; i++)
		spin_lock_init(&sp->open_lock[i]);
	sp->stats = alloc_percpu(struct ip_vs_sp_stats);
	if (!sp->stats)
		goto err_free;
	ipvs->synproxy = sp;
	if (ip_vs_sp_sysctl_init(ipvs))
		goto err_stats;
	return 0;

err_stats:
	free_percpu(sp->stats);
err_free:
	ipvs->synproxy = NULL;
	kfree(sp);
	return -ENOMEM;
}

void ip_vs_synproxy_net_cleanup(struct netns_ipvs *ipvs)
{
	struct ip_vs_synproxy_net *sp = ipvs->synproxy;
	unsigned int i;

	if (!sp)
		return;
	/* no sysctl write can register the hooks again */
	unregister_net_sysctl_table(sp->sysctl_hdr);
	kfree(sp->sysctl_tbl);
	mutex_lock(&ip_vs_sp_frag_mutex);
	ip_vs_sp_frag_hooks(sp, false);
	mutex_unlock(&ip_vs_sp_frag_mutex);
	/* the services are gone, and with them every address */
	if (WARN_ON_ONCE(sp->nvips)) {
		struct ip_vs_sp_vip *v;
		struct hlist_node *n;

		for (i = 0; i < ARRAY_SIZE(sp->vips); i++)
			hlist_for_each_entry_safe(v, n, &sp->vips[i], node) {
				hlist_del_rcu(&v->node);
				kfree_rcu(v, rcu);
			}
	}
	free_percpu(sp->stats);
	ipvs->synproxy = NULL;
	kfree(sp);
}
