// SPDX-License-Identifier: GPL-2.0-only
/*
 * IPVS FULLNAT: both addresses of a connection are translated, so the real
 * servers need no route back to the clients.
 *
 *   client -> VIP:vport      becomes  laddr:lport -> RIP:rport
 *   RIP:rport -> laddr:lport becomes  VIP:vport -> client
 *
 * TCP sequence numbers towards the real server start at a secure ISN of the
 * director's own; the client's address and port travel to the real server in
 * the TOA option.  Per network namespace sysctls and counters live here too.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <linux/seq_file.h>
#include <linux/proc_fs.h>
#include <net/ip_vs_compat.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/ip6_checksum.h>
#include <net/tcp.h>
#include <net/secure_seq.h>
#include <net/ip_vs.h>

/* TCP option walking: fn is called for every option of th of that kind (0:
 * every kind; NOP and EOL never), until the first malformed one.  Shared with
 * SYNPROXY.
 */
void ip_vs_tcp_opts(struct tcphdr *th, u8 kind,
		    void (*fn)(u8 *opt, int len, void *arg), void *arg)
{
	u8 *p = (u8 *)(th + 1);
	int left = th->doff * 4 - sizeof(*th);

	while (left > 0) {
		int len;

		if (*p == TCPOPT_EOL)
			return;
		if (*p == TCPOPT_NOP) {
			p++;
			left--;
			continue;
		}
		if (left < 2)
			return;
		len = p[1];
		if (len < 2 || len > left)
			return;
		if (!kind || *p == kind)
			fn(p, len, arg);
		p += len;
		left -= len;
	}
}

/* A TCP packet that fraglist GRO (rx-gro-list) aggregated keeps every
 * segment's own header, and GSO gives each segment its own back, fixing up
 * only addresses and ports from the head.  FULLNAT and SYNPROXY rewrite
 * sequence numbers, options and TOA in the head, so turn it into what
 * ordinary GRO makes: one header, the payloads after it, checksum offloaded.
 */
static int ip_vs_tcp_unlist(struct sk_buff *skb, unsigned int thoff)
{
	struct tcphdr *th;
	unsigned int len;

	if (skb_linearize(skb))
		return -ENOMEM;
	skb_shinfo(skb)->gso_type &= ~SKB_GSO_FRAGLIST;
	th = (struct tcphdr *)(skb->data + thoff);
	len = skb->len - thoff;
	if (skb->protocol == htons(ETH_P_IPV6))
		th->check = ~tcp_v6_check(len, &ipv6_hdr(skb)->saddr,
					  &ipv6_hdr(skb)->daddr, 0);
	else
		th->check = ~tcp_v4_check(len, ip_hdr(skb)->saddr,
					  ip_hdr(skb)->daddr, 0);
	ip_vs_tcp_csum_partial(skb, thoff);
	return 0;
}

/* The TCP checksum of skb (header at thoff) left to offload, or to the stack
 * before a device that cannot: its check field must hold the pseudo header's
 * sum.  Shared with the PROXY protocol's insertion.
 */
void ip_vs_tcp_csum_partial(struct sk_buff *skb, unsigned int thoff)
{
	skb->ip_summed = CHECKSUM_PARTIAL;
	skb->csum_start = skb_headroom(skb) + thoff;
	skb->csum_offset = offsetof(struct tcphdr, check);
}

/* The TCP header at thoff, options included, writable: NULL when there is
 * none.  Every pointer into skb taken before is stale afterwards.
 */
struct tcphdr *ip_vs_tcp_writable(struct sk_buff *skb, unsigned int thoff)
{
	struct tcphdr *th;
	unsigned int hlen;

	if (unlikely(skb_is_gso(skb) &&
		     (skb_shinfo(skb)->gso_type & SKB_GSO_FRAGLIST)) &&
	    ip_vs_tcp_unlist(skb, thoff))
		return NULL;
	if (skb_ensure_writable(skb, thoff + sizeof(*th)))
		return NULL;
	hlen = ((struct tcphdr *)(skb->data + thoff))->doff * 4;
	if (hlen < sizeof(*th) || skb_ensure_writable(skb, thoff + hlen))
		return NULL;
	return (struct tcphdr *)(skb->data + thoff);
}

static void ip_vs_fnat_nop_ts(u8 *opt, int len, void *arg)
{
	if (len == TCPOLEN_TIMESTAMP)
		memset(opt, TCPOPT_NOP, len);
}

static void ip_vs_fnat_mss(u8 *opt, int len, void *arg)
{
	int less = *(int *)arg;
	u16 mss;

	if (len != TCPOLEN_MSS)
		return;
	mss = get_unaligned_be16(opt + 2);
	if (mss > less + 8)
		put_unaligned_be16(mss - less, opt + 2);
}

static void ip_vs_fnat_sack(u8 *opt, int len, void *arg)
{
	const struct ip_vs_conn *cp = arg;
	u8 *b;

	if (len < TCPOLEN_SACK_BASE + TCPOLEN_SACK_PERBLOCK ||
	    (len - TCPOLEN_SACK_BASE) % TCPOLEN_SACK_PERBLOCK)
		return;
	for (b = opt + TCPOLEN_SACK_BASE; b < opt + len; b += 4)
		put_unaligned_be32(ip_vs_fnat_client_seq(cp, get_unaligned_be32(b)),
				   b);
}

/* Checksums.  CHECKSUM_PARTIAL (and GSO) skbs keep their offload: the check
 * field only holds the pseudo header, which is computed again.  Otherwise the
 * checksum is updated by the difference between the sums of the pseudo header
 * and the L4 header before and after translation (the payload is unchanged,
 * TOA shifts it by an even count), so a wrong checksum stays wrong.
 */
static __sum16 *ip_vs_fnat_check(struct sk_buff *skb, unsigned int thoff,
				 u8 proto)
{
	if (proto == IPPROTO_TCP)
		return &((struct tcphdr *)(skb->data + thoff))->check;
	return &((struct udphdr *)(skb->data + thoff))->check;
}

/* Make the L4 header writable; *hlen: its length. */
static int ip_vs_fnat_l4_writable(struct sk_buff *skb, unsigned int thoff,
				  u8 proto, unsigned int *hlen)
{
	struct tcphdr *th;

	if (proto == IPPROTO_UDP) {
		*hlen = sizeof(struct udphdr);
		return skb_ensure_writable(skb, thoff + *hlen);
	}
	th = ip_vs_tcp_writable(skb, thoff);
	if (!th)
		return -EINVAL;
	*hlen = th->doff * 4;
	return 0;
}

/* Sum of the pseudo header and the L4 header, check field excluded */
static __wsum ip_vs_fnat_l4_sum(struct sk_buff *skb, int af,
				unsigned int thoff, u8 proto)
{
	unsigned int len = skb->len - thoff;
	unsigned int hlen = sizeof(struct udphdr);
	__sum16 *check = ip_vs_fnat_check(skb, thoff, proto);
	__sum16 saved = *check;
	__wsum sum;

	if (proto == IPPROTO_TCP)
		hlen = ((struct tcphdr *)(skb->data + thoff))->doff * 4;
	*check = 0;
	sum = csum_partial(skb->data + thoff, hlen, 0);
	*check = saved;
	if (IS_ENABLED(CONFIG_IP_VS_IPV6) && af == AF_INET6) {
		sum = csum_partial(&ipv6_hdr(skb)->saddr,
				   2 * sizeof(struct in6_addr), sum);
		return csum_add(sum, (__force __wsum)htonl(len));
	}
	sum = csum_partial(&ip_hdr(skb)->saddr, 2 * sizeof(__be32), sum);
	return csum_add(sum, (__force __wsum)htons(len));
}

static void ip_vs_fnat_l4_csum(struct sk_buff *skb, int af, unsigned int thoff,
			       u8 proto, __wsum old)
{
	__sum16 *check = ip_vs_fnat_check(skb, thoff, proto);
	unsigned int len = skb->len - thoff;

	if (skb->ip_summed == CHECKSUM_PARTIAL) {
		if (IS_ENABLED(CONFIG_IP_VS_IPV6) && af == AF_INET6)
			*check = ~csum_ipv6_magic(&ipv6_hdr(skb)->saddr,
						  &ipv6_hdr(skb)->daddr, len,
						  proto, 0);
		else
			*check = ~csum_tcpudp_magic(ip_hdr(skb)->saddr,
						    ip_hdr(skb)->daddr, len,
						    proto, 0);
		return;
	}
	/* IPv4 UDP without a checksum stays without one */
	if (proto == IPPROTO_UDP && af == AF_INET && !*check)
		return;
	*check = csum_fold(csum_add(csum_sub(~csum_unfold(*check), old),
				    ip_vs_fnat_l4_sum(skb, af, thoff, proto)));
	if (proto == IPPROTO_UDP && !*check)
		*check = CSUM_MANGLED_0;
}

static void ip_vs_fnat_set_addrs(struct sk_buff *skb, int af,
				 const union nf_inet_addr *saddr,
				 const union nf_inet_addr *daddr)
{
	if (IS_ENABLED(CONFIG_IP_VS_IPV6) && af == AF_INET6) {
		ipv6_hdr(skb)->saddr = saddr->in6;
		ipv6_hdr(skb)->daddr = daddr->in6;
		return;
	}
	ip_hdr(skb)->saddr = saddr->ip;
	ip_hdr(skb)->daddr = daddr->ip;
	ip_send_check(ip_hdr(skb));
}

/* Insert the TOA option right after the fixed TCP header. */
static void ip_vs_fnat_add_toa(struct sk_buff *skb, struct ip_vs_conn *cp,
			       unsigned int thoff, unsigned int mtu)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	unsigned int hdrlen = thoff + sizeof(struct tcphdr);
	int optlen = cp->af == AF_INET6 ? IP_VS_TCPOLEN_TOA_V6 :
					  IP_VS_TCPOLEN_TOA;
	struct tcphdr *th = (struct tcphdr *)(skb->data + thoff);
	u8 *opt;

	if (th->doff * 4 + optlen > 60) {
		IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_ADD_TOA_HEAD_FULL);
		return;
	}
	if (skb_is_gso(skb) || skb->len + optlen > mtu) {
		IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_ADD_TOA_FAIL_LEN);
		return;
	}
	if (skb_cow(skb, optlen)) {
		IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_ADD_TOA_FAIL_MEM);
		return;
	}
	skb_push(skb, optlen);
	memmove(skb->data, skb->data + optlen, hdrlen);
	skb_reset_network_header(skb);
	skb_set_transport_header(skb, thoff);
	if (skb->ip_summed == CHECKSUM_PARTIAL)
		skb->csum_start -= optlen;

	opt = skb->data + hdrlen;
	th = (struct tcphdr *)(skb->data + thoff);
	th->doff += optlen / 4;
	opt[1] = optlen;
	memcpy(opt + 2, &cp->cport, sizeof(cp->cport));
	if (IS_ENABLED(CONFIG_IP_VS_IPV6) && cp->af == AF_INET6) {
		opt[0] = IP_VS_TCPOPT_TOA_V6;
		memcpy(opt + 4, &cp->caddr.in6, sizeof(cp->caddr.in6));
		ipv6_hdr(skb)->payload_len =
			htons(ntohs(ipv6_hdr(skb)->payload_len) + optlen);
	} else {
		opt[0] = IP_VS_TCPOPT_TOA;
		memcpy(opt + 4, &cp->caddr.ip, sizeof(cp->caddr.ip));
		ip_hdr(skb)->tot_len =
			htons(ntohs(ip_hdr(skb)->tot_len) + optlen);
	}
	IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_ADD_TOA_OK);
}

static void ip_vs_fnat_count_reuse(struct netns_ipvs *ipvs, int old_state)
{
	static const u8 item[IP_VS_TCP_S_LAST] = {
		[IP_VS_TCP_S_CLOSE]	  = FULLNAT_CONN_REUSED_CLOSE,
		[IP_VS_TCP_S_TIME_WAIT]	  = FULLNAT_CONN_REUSED_TIMEWAIT,
		[IP_VS_TCP_S_FIN_WAIT]	  = FULLNAT_CONN_REUSED_FINWAIT,
		[IP_VS_TCP_S_CLOSE_WAIT]  = FULLNAT_CONN_REUSED_CLOSEWAIT,
		[IP_VS_TCP_S_LAST_ACK]	  = FULLNAT_CONN_REUSED_LASTACK,
		[IP_VS_TCP_S_ESTABLISHED] = FULLNAT_CONN_REUSED_ESTAB,
	};

	IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_CONN_REUSED);
	if (old_state >= 0 && old_state < IP_VS_TCP_S_LAST && item[old_state])
		this_cpu_inc(ipvs->fnat->ext_stats->items[item[old_state]]);
}

static u32 ip_vs_fnat_isn(struct ip_vs_conn *cp)
{
#ifdef CONFIG_IP_VS_IPV6
	if (cp->af == AF_INET6)
		return secure_tcpv6_seq(cp->fnat.lip.ip6, cp->daddr.ip6,
					cp->fnat.lport, cp->dport);
#endif
	return secure_tcp_seq(cp->fnat.lip.ip, cp->daddr.ip, cp->fnat.lport,
			      cp->dport);
}

/* A sequence number of the client's stream as the real server sees it,
 * back to the client's: less our ISN's offset and the PROXY protocol header
 * (a number within the header is the client's first).
 */
u32 ip_vs_fnat_client_seq(const struct ip_vs_conn *cp, u32 seq)
{
	u32 off = seq - (cp->fnat.init_seq + 1);

	if (!cp->fnat.pp_len || (s32)off <= 0)
		return seq - cp->fnat.delta;
	return seq - cp->fnat.delta - min_t(u32, off, cp->fnat.pp_len);
}

/* client -> real server, TCP part: sequence numbers, options, TOA, the
 * PROXY protocol header; *rst_past_pp: a reset that must also go where the
 * header ends (see ip_vs_fnat_rst_past_pp())
 */
static int ip_vs_fnat_tcp_in(struct sk_buff *skb, struct ip_vs_conn *cp,
			     unsigned int thoff, unsigned int mtu,
			     bool *rst_past_pp)
{
	struct ip_vs_fnat_net *fn = cp->ipvs->fnat;
	struct ip_vs_synproxy_conn *sp;
	bool pp = false;
	struct tcphdr *th;
	bool syn;

	th = ip_vs_tcp_writable(skb, thoff);
	if (!th)
		return -EINVAL;
	syn = th->syn && !th->ack;

	if (syn) {
		u32 seq = ntohl(th->seq);
		bool have, retrans;

		if (cp->fnat.pp_len && ip_vs_pp_syn_data(skb, cp, thoff))
			return -EINVAL;
		/* the sequence state changes under the lock the state table
		 * uses: a SYN and the real server's SYN-ACK can meet here
		 */
		spin_lock_bh(&cp->lock);
		have = cp->fnat.flags & IP_VS_FNAT_F_SEQ;
		retrans = have && seq + cp->fnat.delta == cp->fnat.init_seq;
		if (!have || (!retrans && READ_ONCE(fn->sysctl_conn_reused) &&
			      (cp->state == IP_VS_TCP_S_SYN_RECV ||
			       cp->state == IP_VS_TCP_S_SYN_SENT))) {
			if (have)
				ip_vs_fnat_count_reuse(cp->ipvs, cp->old_state);
			cp->fnat.init_seq = ip_vs_fnat_isn(cp);
			cp->fnat.delta = cp->fnat.init_seq - seq;
			cp->fnat.flags |= IP_VS_FNAT_F_SEQ;
			cp->fnat.flags &= ~(IP_VS_FNAT_F_FDATA |
					    IP_VS_FNAT_F_PP_ACKED);
		}
		spin_unlock_bh(&cp->lock);
		/* SYNPROXY's SYN has timestamps when it translates them */
		sp = ip_vs_sp_of(cp);
		if (READ_ONCE(fn->sysctl_timestamp_remove) &&
		    !(sp && (READ_ONCE(sp->flags) & IP_VS_SP_F_TS)))
			ip_vs_tcp_opts(th, TCPOPT_TIMESTAMP,
				       ip_vs_fnat_nop_ts, NULL);
	}
	if (cp->fnat.flags & IP_VS_FNAT_F_SEQ) {
		u32 seq = ntohl(th->seq) + cp->fnat.delta;

		/* from the client's first byte on while the real server may
		 * not have the header, a packet carries it; a reset there
		 * goes where the header starts, and where it ends
		 */
		if (cp->fnat.pp_len && !syn) {
			if (seq != cp->fnat.init_seq + 1 ||
			    (READ_ONCE(cp->fnat.flags) & IP_VS_FNAT_F_PP_ACKED))
				seq += cp->fnat.pp_len;
			else if (!th->rst)
				pp = true;
			else
				*rst_past_pp = true;
		}
		if (pp && !ip_vs_pp_csum_ok(skb, cp->af, thoff))
			return -EINVAL;
		th->seq = htonl(seq);
	}

	if (syn ||
	    (READ_ONCE(fn->sysctl_toa) && (cp->fnat.flags & IP_VS_FNAT_F_FDATA) &&
	     th->ack && !th->syn && !th->rst &&
	     ntohl(th->ack_seq) == cp->fnat.fdata_seq))
		ip_vs_fnat_add_toa(skb, cp, thoff, mtu);
	if (pp)
		return ip_vs_pp_insert(skb, cp, thoff, mtu);
	return 0;
}

/* The real server's SYN-ACK: its first data byte, where TOA goes */
void ip_vs_fnat_fdata(struct ip_vs_conn *cp, u32 seq)
{
	spin_lock_bh(&cp->lock);
	cp->fnat.fdata_seq = seq;
	cp->fnat.flags |= IP_VS_FNAT_F_FDATA;
	spin_unlock_bh(&cp->lock);
}

/* real server -> client, TCP part */
static int ip_vs_fnat_tcp_out(struct sk_buff *skb, struct ip_vs_conn *cp,
			      unsigned int thoff)
{
	struct ip_vs_fnat_net *fn = cp->ipvs->fnat;
	struct tcphdr *th;

	th = ip_vs_tcp_writable(skb, thoff);
	if (!th)
		return -EINVAL;

	if (th->syn && th->ack) {
		ip_vs_fnat_fdata(cp, ntohl(th->seq) + 1);
		if (READ_ONCE(fn->sysctl_mss_adjust)) {
			int less = cp->af == AF_INET6 ? IP_VS_TCPOLEN_TOA_V6 :
							IP_VS_TCPOLEN_TOA;

			ip_vs_tcp_opts(th, TCPOPT_MSS, ip_vs_fnat_mss, &less);
		}
	}
	if (th->ack && (cp->fnat.flags & IP_VS_FNAT_F_SEQ)) {
		u32 ack = ntohl(th->ack_seq);

		/* the real server has the PROXY protocol header */
		if (cp->fnat.pp_len &&
		    !(READ_ONCE(cp->fnat.flags) & IP_VS_FNAT_F_PP_ACKED) &&
		    (s32)(ack - (cp->fnat.init_seq + 1 + cp->fnat.pp_len)) >= 0) {
			spin_lock_bh(&cp->lock);
			cp->fnat.flags |= IP_VS_FNAT_F_PP_ACKED;
			spin_unlock_bh(&cp->lock);
		}
		th->ack_seq = htonl(ip_vs_fnat_client_seq(cp, ack));
		ip_vs_tcp_opts(th, TCPOPT_SACK, ip_vs_fnat_sack, cp);
	}
	return 0;
}

static void ip_vs_fnat_set_ports(struct sk_buff *skb, unsigned int thoff,
				 __be16 sport, __be16 dport)
{
	__be16 *ports = (__be16 *)(skb->data + thoff);

	ports[0] = sport;
	ports[1] = dport;
}

/* An ICMP error about a FULLNAT connection.  out: it came from the real
 * server's side and goes to the client; otherwise it came from the client's
 * side and goes to the real server.  The embedded packet is rewritten into
 * the one its receiver sent.  Returns NF_STOLEN once sent, NF_DROP otherwise.
 */
int ip_vs_fnat_icmp(struct sk_buff *skb, struct ip_vs_conn *cp, bool out)
{
	/* about an error, no error is sent: neither "too big" nor "unreachable" */
	struct ip_vs_iphdr icmph = { .hdr_flags = IP_VS_HDR_ICMP };
	const union nf_inet_addr *osrc, *isrc, *idst;
	unsigned int toff, coff, cthoff;
	union nf_inet_addr *odst;
	struct ip_vs_dest *dest;
	__be16 isport, idport;
	int af = cp->af;
	__be16 *ports;
	__sum16 *check;
	u8 iproto;

	if (out) {
		osrc = &cp->vaddr;
		odst = &cp->caddr;
		dest = NULL;
		isrc = &cp->caddr;
		isport = cp->cport;
		idst = &cp->vaddr;
		idport = cp->vport;
	} else {
		osrc = &cp->fnat.lip;
		odst = &cp->daddr;
		dest = cp->dest;
		isrc = &cp->daddr;
		isport = cp->dport;
		idst = &cp->fnat.lip;
		idport = cp->fnat.lport;
	}
	if (!cp->fnat.laddr)
		return NF_DROP;

	if (IS_ENABLED(CONFIG_IP_VS_IPV6) && af == AF_INET6) {
		unsigned short fragoff = 0;
		int proto;

		/* extension headers, outside and in the quoted packet */
		toff = 0;
		if (ipv6_find_hdr(skb, &toff, IPPROTO_ICMPV6, NULL, NULL) < 0)
			return NF_DROP;
		coff = toff + sizeof(struct icmp6hdr);
		cthoff = coff;
		proto = ipv6_find_hdr(skb, &cthoff, -1, &fragoff, NULL);
		if (proto < 0 || fragoff)
			return NF_DROP;
		iproto = proto;
	} else {
		struct iphdr *ciph;

		toff = ip_hdrlen(skb);
		coff = toff + sizeof(struct icmphdr);
		if (skb_ensure_writable(skb, coff + sizeof(struct iphdr)))
			return NF_DROP;
		ciph = (struct iphdr *)(skb->data + coff);
		if (ciph->ihl < 5)
			return NF_DROP;
		iproto = ciph->protocol;
		cthoff = coff + ciph->ihl * 4;
	}
	/* a hop for errors too */
	if (iproto != cp->protocol ||
	    skb_ensure_writable(skb, cthoff + 8) ||
	    ip_vs_fnat_get_out_rt(skb, cp, dest, odst, &icmph) < 0)
		return NF_DROP;

	/* the embedded packet */
	ports = (__be16 *)(skb->data + cthoff);
	ports[0] = isport;
	ports[1] = idport;
	if (out && iproto == IPPROTO_TCP &&
	    (cp->fnat.flags & IP_VS_FNAT_F_SEQ)) {
		__be32 *seq = (__be32 *)(ports + 2);

		*seq = htonl(ip_vs_fnat_client_seq(cp, ntohl(*seq)));
	}
	/* the client quotes the real server's sequence as SYNPROXY moved it */
	if (!out && (cp->flags & IP_VS_CONN_F_SYNPROXY))
		ip_vs_synproxy_icmp(skb, cp, cthoff);
	if (IS_ENABLED(CONFIG_IP_VS_IPV6) && af == AF_INET6) {
		struct ipv6hdr *cip6h = (struct ipv6hdr *)(skb->data + coff);

		cip6h->saddr = isrc->in6;
		cip6h->daddr = idst->in6;
	} else {
		struct iphdr *ciph = (struct iphdr *)(skb->data + coff);

		ciph->saddr = isrc->ip;
		ciph->daddr = idst->ip;
		ip_send_check(ciph);
	}

	/* the outer packet and the ICMP checksum */
	ip_vs_fnat_set_addrs(skb, af, osrc, odst);
	if (IS_ENABLED(CONFIG_IP_VS_IPV6) && af == AF_INET6) {
		check = &((struct icmp6hdr *)(skb->data + toff))->icmp6_cksum;
		*check = 0;
		*check = csum_ipv6_magic(&ipv6_hdr(skb)->saddr,
					 &ipv6_hdr(skb)->daddr,
					 skb->len - toff, IPPROTO_ICMPV6,
					 skb_checksum(skb, toff,
						      skb->len - toff, 0));
	} else {
		check = &((struct icmphdr *)(skb->data + toff))->checksum;
		*check = 0;
		*check = csum_fold(skb_checksum(skb, toff, skb->len - toff, 0));
	}
	skb->ip_summed = CHECKSUM_UNNECESSARY;
	return ip_vs_fnat_send(skb, cp);
}

/* A copy of skb, the client's reset at the PROXY protocol header's start
 * (translated), where the header ends.  The real server may have the header
 * although its ACK of it has not reached us: then only this one is at its
 * rcv_nxt, and the one at the header's start falls before its window and is
 * dropped; if it does not have the header, the first reset closes the
 * connection and this one finds none.  NULL if there is no memory.
 */
static struct sk_buff *ip_vs_fnat_rst_past_pp(struct sk_buff *skb,
					      struct ip_vs_conn *cp,
					      unsigned int thoff)
{
	struct sk_buff *nskb = skb_copy(skb, GFP_ATOMIC);
	struct tcphdr *th;
	__be32 seq;

	if (!nskb)
		return NULL;
	th = (struct tcphdr *)(nskb->data + thoff);
	seq = htonl(ntohl(th->seq) + cp->fnat.pp_len);
	inet_proto_csum_replace4(&th->check, nskb, th->seq, seq, false);
	th->seq = seq;
	return nskb;
}

int ip_vs_fnat_xmit(struct sk_buff *skb, struct ip_vs_conn *cp,
		    struct ip_vs_protocol *pp, struct ip_vs_iphdr *ipvsh)
{
	struct sk_buff *rst2 = NULL;
	unsigned int thoff = ipvsh->len;
	bool rst_past_pp = false;
	unsigned int hlen;
	int af = cp->af;
	__wsum old;
	int mtu;

	if (!cp->fnat.laddr || ipvsh->fragoffs ||
	    (cp->protocol != IPPROTO_TCP && cp->protocol != IPPROTO_UDP))
		goto drop;
	/* an ICMP error from the client's side, about our replies: ipvsh
	 * describes the packet it quotes
	 */
	if (unlikely(ip_vs_iph_icmp(ipvsh))) {
		if (ip_vs_fnat_icmp(skb, cp, false) == NF_STOLEN)
			return NF_STOLEN;
		goto drop;
	}
	if (ip_vs_fnat_l4_writable(skb, thoff, cp->protocol, &hlen))
		goto drop;
	mtu = ip_vs_fnat_get_out_rt(skb, cp, cp->dest, &cp->daddr, ipvsh);
	if (mtu < 0)
		goto drop;
	old = ip_vs_fnat_l4_sum(skb, af, thoff, cp->protocol);
	if (cp->protocol == IPPROTO_TCP &&
	    ip_vs_fnat_tcp_in(skb, cp, thoff, mtu, &rst_past_pp))
		goto drop;
	ip_vs_fnat_set_ports(skb, thoff, cp->fnat.lport, cp->dport);
	ip_vs_fnat_set_addrs(skb, af, &cp->fnat.lip, &cp->daddr);
	ip_vs_fnat_l4_csum(skb, af, thoff, cp->protocol, old);
	if (unlikely(rst_past_pp))
		rst2 = ip_vs_fnat_rst_past_pp(skb, cp, thoff);
	ip_vs_fnat_send(skb, cp);
	if (rst2)
		ip_vs_fnat_send(rst2, cp);
	return NF_STOLEN;

drop:
	kfree_skb(skb);
	return NF_STOLEN;
}

/* A reply from the real server: translate back to VIP -> client and send.
 * Consumes skb and the reference on cp.
 */
int ip_vs_fnat_response(struct sk_buff *skb, struct ip_vs_proto_data *pd,
			struct ip_vs_conn *cp, struct ip_vs_iphdr *iph)
{
	unsigned int thoff = iph->len;
	unsigned int hlen;
	int af = cp->af;
	__wsum old;
	int rc;

	if (iph->fragoffs ||
	    (cp->protocol != IPPROTO_TCP && cp->protocol != IPPROTO_UDP))
		goto drop;
	if (ip_vs_fnat_l4_writable(skb, thoff, cp->protocol, &hlen) ||
	    ip_vs_fnat_get_out_rt(skb, cp, NULL, &cp->caddr, iph) < 0)
		goto drop;
	old = ip_vs_fnat_l4_sum(skb, af, thoff, cp->protocol);
	if (cp->protocol == IPPROTO_TCP && ip_vs_fnat_tcp_out(skb, cp, thoff))
		goto drop;
	ip_vs_fnat_set_ports(skb, thoff, cp->vport, cp->cport);
	ip_vs_fnat_set_addrs(skb, af, &cp->vaddr, &cp->caddr);
	ip_vs_fnat_l4_csum(skb, af, thoff, cp->protocol, old);
	rc = ip_vs_fnat_send(skb, cp);
	ip_vs_conn_put(cp);
	return rc;

drop:
	ip_vs_conn_put(cp);
	kfree_skb(skb);
	return NF_STOLEN;
}

unsigned long ip_vs_fnat_est_timeout(struct ip_vs_conn *cp,
				     unsigned long timeout)
{
	struct ip_vs_dest *dest = cp->dest;
	struct ip_vs_service *svc;
	u32 est = 0;

	if (!dest)
		return timeout;
	rcu_read_lock();
	svc = rcu_dereference(dest->svc);
	if (svc)
		est = READ_ONCE(svc->fnat.est_timeout);
	rcu_read_unlock();
	return est ? (unsigned long)est * HZ : timeout;
}

/* sysctls */

static int ip_vs_fnat_zero;
static int ip_vs_fnat_one = 1;
static int ip_vs_fnat_port_lo = 1025;
static int ip_vs_fnat_port_hi = 65535;
static int ip_vs_fnat_tries_lo = 10;
static int ip_vs_fnat_tries_hi = 60000;
static int ip_vs_fnat_flush_hi = 2000;

#define IP_VS_FNAT_SYSCTL(name, field, lo, hi)				\
	{								\
		.procname	= name,					\
		.data		= (void *)offsetof(struct ip_vs_fnat_net, field), \
		.maxlen		= sizeof(int),				\
		.mode		= 0644,					\
		.proc_handler	= proc_dointvec_minmax,			\
		.extra1		= lo,					\
		.extra2		= hi,					\
	}

static const struct ctl_table ip_vs_fnat_vars[] = {
	IP_VS_FNAT_SYSCTL("fullnat_timestamp_remove_entry",
			  sysctl_timestamp_remove, &ip_vs_fnat_zero,
			  &ip_vs_fnat_one),
	IP_VS_FNAT_SYSCTL("fullnat_mss_adjust_entry", sysctl_mss_adjust,
			  &ip_vs_fnat_zero, &ip_vs_fnat_one),
	IP_VS_FNAT_SYSCTL("fullnat_conn_reused_entry", sysctl_conn_reused,
			  &ip_vs_fnat_zero, &ip_vs_fnat_one),
	IP_VS_FNAT_SYSCTL("fullnat_toa_entry", sysctl_toa, &ip_vs_fnat_zero,
			  &ip_vs_fnat_one),
	IP_VS_FNAT_SYSCTL("fullnat_lport_max", sysctl_lport_max,
			  &ip_vs_fnat_port_lo, &ip_vs_fnat_port_hi),
	IP_VS_FNAT_SYSCTL("fullnat_lport_min", sysctl_lport_min,
			  &ip_vs_fnat_port_lo, &ip_vs_fnat_port_hi),
	IP_VS_FNAT_SYSCTL("fullnat_lport_tries", sysctl_lport_tries,
			  &ip_vs_fnat_tries_lo, &ip_vs_fnat_tries_hi),
	IP_VS_FNAT_SYSCTL("fullnat_sync_flush_ms", sysctl_sync_flush_ms,
			  &ip_vs_fnat_one, &ip_vs_fnat_flush_hi),
	{
		.procname	= "fullnat_sync_resend",
		.data		= (void *)offsetof(struct ip_vs_fnat_net,
						   sysctl_sync_resend),
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= ip_vs_fnat_sync_resend_sysctl,
		.extra1		= &ip_vs_fnat_one,
		.extra2		= &ip_vs_fnat_one,
	},
	{ }
};

#define IP_VS_FNAT_NVARS (ARRAY_SIZE(ip_vs_fnat_vars) - 1)

static int ip_vs_fnat_sysctl_init(struct netns_ipvs *ipvs)
{
	struct ip_vs_fnat_net *fn = ipvs->fnat;
	struct ctl_table *tbl;
	unsigned int i;

	tbl = kmemdup(ip_vs_fnat_vars, sizeof(ip_vs_fnat_vars), GFP_KERNEL);
	if (!tbl)
		return -ENOMEM;
	for (i = 0; i < IP_VS_FNAT_NVARS; i++)
		tbl[i].data = (void *)fn + (unsigned long)tbl[i].data;
	if (ip_vs_sysctls_hidden(ipvs->net))
		tbl[0].procname = NULL;
	fn->sysctl_hdr = ip_vs_register_net_sysctl(ipvs->net, "net/ipv4/vs", tbl,
						   tbl[0].procname ? IP_VS_FNAT_NVARS : 0);
	if (!fn->sysctl_hdr) {
		kfree(tbl);
		return -ENOMEM;
	}
	fn->sysctl_tbl = tbl;
	return 0;
}

/* /proc/net/ip_vs_ext_stats */

static const char * const ip_vs_ext_stat_names[IP_VS_EXT_STAT_LAST] = {
	[FULLNAT_ADD_TOA_OK]		= "fullnat_add_toa_ok",
	[FULLNAT_ADD_TOA_FAIL_LEN]	= "fullnat_add_toa_fail_len",
	[FULLNAT_ADD_TOA_HEAD_FULL]	= "fullnat_add_toa_head_full",
	[FULLNAT_ADD_TOA_FAIL_MEM]	= "fullnat_add_toa_fail_mem",
	[FULLNAT_ADD_TOA_FAIL_PROTO]	= "fullnat_add_toa_fail_proto",
	[FULLNAT_CONN_REUSED]		= "fullnat_conn_reused",
	[FULLNAT_CONN_REUSED_CLOSE]	= "fullnat_conn_reused_close",
	[FULLNAT_CONN_REUSED_TIMEWAIT]	= "fullnat_conn_reused_timewait",
	[FULLNAT_CONN_REUSED_FINWAIT]	= "fullnat_conn_reused_finwait",
	[FULLNAT_CONN_REUSED_CLOSEWAIT]	= "fullnat_conn_reused_closewait",
	[FULLNAT_CONN_REUSED_LASTACK]	= "fullnat_conn_reused_lastack",
	[FULLNAT_CONN_REUSED_ESTAB]	= "fullnat_conn_reused_estab",
	[FULLNAT_NO_LADDR]		= "fullnat_no_laddr",
	[FULLNAT_LPORT_EXHAUSTED]	= "fullnat_lport_exhausted",
	[FULLNAT_ADD_PP_OK]		= "fullnat_add_pp_ok",
	[FULLNAT_ADD_PP_FAIL]		= "fullnat_add_pp_fail",
	[FULLNAT_SYNC_CONN]		= "fullnat_sync_conn",
	[FULLNAT_SYNC_REFUSED]		= "fullnat_sync_refused",
};

static int ip_vs_ext_stats_show(struct seq_file *seq, void *v)
{
	struct netns_ipvs *ipvs = net_ipvs(seq_file_single_net(seq));
	int i, cpu;

	seq_printf(seq, "%34s", "");
	for_each_online_cpu(cpu)
		seq_printf(seq, "CPU%d       ", cpu);
	seq_putc(seq, '\n');
	for (i = 1; i < IP_VS_EXT_STAT_LAST; i++) {
		seq_printf(seq, "%-25s:", ip_vs_ext_stat_names[i]);
		for_each_online_cpu(cpu)
			seq_printf(seq, "%10llu ",
				   per_cpu_ptr(ipvs->fnat->ext_stats, cpu)->items[i]);
		seq_putc(seq, '\n');
	}
	ip_vs_synproxy_stats_lines(seq, ipvs);
	return 0;
}

int ip_vs_fnat_net_init(struct netns_ipvs *ipvs)
{
	struct ip_vs_fnat_net *fn;

	fn = kzalloc(sizeof(*fn), GFP_KERNEL);
	if (!fn)
		return -ENOMEM;
	fn->sysctl_timestamp_remove = 1;
	fn->sysctl_mss_adjust = 1;
	fn->sysctl_conn_reused = 1;
	fn->sysctl_toa = 1;
	fn->sysctl_lport_max = 65535;
	fn->sysctl_lport_min = 5000;
	fn->sysctl_lport_tries = 10000;
	fn->sysctl_sync_flush_ms = IP_VS_FNAT_SYNC_FLUSH_MS;
	fn->table_gen = 1;
	fn->ipvs = ipvs;
	INIT_LIST_HEAD(&fn->sync_laddrs);
	fn->ext_stats = alloc_percpu(struct ip_vs_ext_stats);
	if (!fn->ext_stats)
		goto err_free;
	if (ip_vs_fnat_tab_get())
		goto err_stats;
	ipvs->fnat = fn;
	if (ip_vs_fnat_sysctl_init(ipvs))
		goto err_tab;
	if (!proc_create_net_single("ip_vs_ext_stats", 0444,
				    ipvs->net->proc_net,
				    ip_vs_ext_stats_show, NULL))
		goto err_sysctl;
	if (ip_vs_fnat_proc_init(ipvs))
		goto err_proc;
	return 0;

err_proc:
	remove_proc_entry("ip_vs_ext_stats", ipvs->net->proc_net);
err_sysctl:
	unregister_net_sysctl_table(fn->sysctl_hdr);
	kfree(fn->sysctl_tbl);
err_tab:
	ipvs->fnat = NULL;
	ip_vs_fnat_tab_put();
err_stats:
	free_percpu(fn->ext_stats);
err_free:
	ipvs->fnat = NULL;
	kfree(fn);
	return -ENOMEM;
}

void ip_vs_fnat_net_cleanup(struct netns_ipvs *ipvs)
{
	struct ip_vs_fnat_net *fn = ipvs->fnat;

	if (!fn)
		return;
	ip_vs_laddr_sync_flush(ipvs);
	ip_vs_fnat_proc_cleanup(ipvs);
	remove_proc_entry("ip_vs_ext_stats", ipvs->net->proc_net);
	unregister_net_sysctl_table(fn->sysctl_hdr);
	kfree(fn->sysctl_tbl);
	free_percpu(fn->ext_stats);
	ipvs->fnat = NULL;
	kfree(fn);
	ip_vs_fnat_tab_put();
}
