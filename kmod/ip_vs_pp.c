// SPDX-License-Identifier: GPL-2.0-only
/*
 * IPVS FULLNAT: the PROXY protocol header (versions 1 and 2 of haproxy's
 * proxy-protocol.txt) at the start of the byte stream towards the real server,
 * carrying the client's address and port and the virtual service's, so that
 * nginx, haproxy and the like learn the client without a kernel module.
 *
 * The header takes the pp_len sequence numbers after our ISN towards the real
 * server; the client's bytes follow it (ip_vs_fnat.c moves their sequence
 * numbers, and the real server's acknowledgements and SACK blocks back).  A
 * client packet that starts at the client's first sequence number carries the
 * header in front of its payload until the real server has acknowledged it:
 * the handshake's ACK takes it (so a server that speaks first has it at once,
 * SYNPROXY's ACK to the real server included), and whatever the client sends
 * or retransmits from its first byte takes it again while it may be lost.
 * A reset from the client's first byte then goes to both ends of the header,
 * since the real server may have it unbeknown to us.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/netfilter.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/tcp.h>
#include <net/ip_vs.h>

/* v1: "PROXY TCP6 " + two addresses of at most 39 characters + two ports +
 * separators and CRLF is 104 bytes, the specification's limit 107; v2: 16
 * bytes and two IPv6 addresses and ports, 52.
 */
#define IP_VS_PP_MAX	108

static const u8 ip_vs_pp_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* The header of cp into buf (IP_VS_PP_MAX bytes): its length. */
static unsigned int ip_vs_pp_build(const struct ip_vs_conn *cp, u8 pp, u8 *buf)
{
	bool v6 = IS_ENABLED(CONFIG_IP_VS_IPV6) && cp->af == AF_INET6;
	unsigned int alen = v6 ? sizeof(struct in6_addr) : sizeof(__be32);
	u8 *p;

	if (pp == IP_VS_PROXY_PROTOCOL_V1) {
		if (v6)
			return scnprintf(buf, IP_VS_PP_MAX,
					 "PROXY TCP6 %pI6c %pI6c %u %u\r\n",
					 &cp->caddr.in6, &cp->vaddr.in6,
					 ntohs(cp->cport), ntohs(cp->vport));
		return scnprintf(buf, IP_VS_PP_MAX,
				 "PROXY TCP4 %pI4 %pI4 %u %u\r\n",
				 &cp->caddr.ip, &cp->vaddr.ip,
				 ntohs(cp->cport), ntohs(cp->vport));
	}
	memcpy(buf, ip_vs_pp_v2_sig, sizeof(ip_vs_pp_v2_sig));
	buf[12] = 0x21;				/* version 2, PROXY */
	buf[13] = v6 ? 0x21 : 0x11;		/* TCP over IPv6 or IPv4 */
	put_unaligned_be16(2 * alen + 4, buf + 14);
	p = buf + 16;
	memcpy(p, &cp->caddr, alen);
	memcpy(p + alen, &cp->vaddr, alen);
	memcpy(p + 2 * alen, &cp->cport, 2);
	memcpy(p + 2 * alen + 2, &cp->vport, 2);
	return 16 + 2 * alen + 4;
}

/* A new FULLNAT connection of svc: its header's version and length */
void ip_vs_pp_conn_init(struct ip_vs_conn *cp, struct ip_vs_service *svc)
{
	u8 pp = READ_ONCE(svc->fnat.proxy_protocol);
	u8 buf[IP_VS_PP_MAX];

	cp->fnat.pp = 0;
	cp->fnat.pp_len = 0;
	if (!pp || cp->protocol != IPPROTO_TCP)
		return;
	cp->fnat.pp = pp;
	cp->fnat.pp_len = ip_vs_pp_build(cp, pp, buf);
}

/* The header goes into TCP streams that pass the director both ways through
 * FULLNAT: the other combinations are refused whichever part comes first,
 * the option or the real server (as SYNPROXY's are).  svc: the service
 * edited or given a real server, NULL while it is created; pp: its option to
 * be; udest: the real server added or edited, or NULL.  Called with the
 * service mutex held.
 */
bool ip_vs_pp_allowed(struct ip_vs_service *svc, u16 protocol, u8 pp,
		      const struct ip_vs_dest_user_kern *udest)
{
	struct ip_vs_dest *dest;

	if (!pp)
		return true;
	if (protocol != IPPROTO_TCP) {
		pr_info_ratelimited("PROXY protocol refused: %s service, only TCP services can have it\n",
				    ip_vs_proto_name(protocol));
		return false;
	}
	if (udest) {
		if ((udest->conn_flags & IP_VS_CONN_F_FWD_MASK) ==
		    IP_VS_CONN_F_FULLNAT)
			return true;
		goto bad_fwd;
	}
	if (!svc)
		return true;
	list_for_each_entry(dest, &svc->destinations, n_list)
		if ((atomic_read(&dest->conn_flags) & IP_VS_CONN_F_FWD_MASK) !=
		    IP_VS_CONN_F_FULLNAT)
			goto bad_fwd;
	return true;

bad_fwd:
	pr_info_ratelimited("PROXY protocol refused: real servers of a PROXY protocol service must be FULLNAT\n");
	return false;
}

/* The packet's checksum is right, or left to offload: it is about to be
 * computed anew over a payload that changes.
 */
bool ip_vs_pp_csum_ok(struct sk_buff *skb, int af, unsigned int thoff)
{
	if (skb->ip_summed == CHECKSUM_PARTIAL ||
	    skb->ip_summed == CHECKSUM_UNNECESSARY)
		return true;
	return !nf_checksum(skb, NF_INET_LOCAL_IN, thoff, IPPROTO_TCP, af);
}

static void ip_vs_pp_set_len(struct sk_buff *skb, int af)
{
	if (IS_ENABLED(CONFIG_IP_VS_IPV6) && af == AF_INET6)
		ipv6_hdr(skb)->payload_len =
			htons(skb->len - sizeof(struct ipv6hdr));
	else
		ip_hdr(skb)->tot_len = htons(skb->len);
}

/* A SYN with data (TCP Fast Open): the header takes the sequence numbers
 * that data would have, so the data goes, and the client sends it again
 * after the handshake as it does when a server does not take it in the SYN.
 */
int ip_vs_pp_syn_data(struct sk_buff *skb, struct ip_vs_conn *cp,
		      unsigned int thoff)
{
	unsigned int hlen;

	hlen = thoff + ((struct tcphdr *)(skb->data + thoff))->doff * 4;
	if (skb->len <= hlen)
		return 0;
	if (!ip_vs_pp_csum_ok(skb, cp->af, thoff) || pskb_trim(skb, hlen))
		return -EINVAL;
	ip_vs_pp_set_len(skb, cp->af);
	ip_vs_tcp_csum_partial(skb, thoff);
	return 0;
}

/* Put the header in front of the payload of skb (the client's packet that
 * starts at its first sequence number, already translated; its checksum was
 * found right).  What then exceeds mtu leaves as a GSO packet of segments
 * that fit, as does what already was one.
 */
int ip_vs_pp_insert(struct sk_buff *skb, struct ip_vs_conn *cp,
		    unsigned int thoff, unsigned int mtu)
{
	struct netns_ipvs *ipvs = cp->ipvs;
	unsigned int len, hlen, mss;
	u8 buf[IP_VS_PP_MAX];

	len = ip_vs_pp_build(cp, cp->fnat.pp, buf);
	if (WARN_ON_ONCE(len != cp->fnat.pp_len))
		goto fail;
	hlen = thoff + ((struct tcphdr *)(skb->data + thoff))->doff * 4;
	if (mtu <= hlen + len)
		goto fail;
	/* GRO's chain of skbs keeps each segment's size: one buffer instead,
	 * so that segmentation may cut anywhere
	 */
	if (skb_has_frag_list(skb) && skb_linearize(skb))
		goto fail;
	if (skb_cow(skb, len))
		goto fail;
	skb_push(skb, len);
	memmove(skb->data, skb->data + len, hlen);
	memcpy(skb->data + hlen, buf, len);
	skb_reset_network_header(skb);
	skb_set_transport_header(skb, thoff);
	ip_vs_pp_set_len(skb, cp->af);
	ip_vs_tcp_csum_partial(skb, thoff);

	mss = mtu - hlen;
	if (skb_is_gso(skb)) {
		skb_shinfo(skb)->gso_type |= SKB_GSO_DODGY;
		mss = skb_shinfo(skb)->gso_size;
	} else if (skb->len > mtu) {
		skb_shinfo(skb)->gso_size = mss;
		skb_shinfo(skb)->gso_type = cp->af == AF_INET6 ?
					    SKB_GSO_TCPV6 : SKB_GSO_TCPV4;
	}
	if (skb_is_gso(skb))
		skb_shinfo(skb)->gso_segs = DIV_ROUND_UP(skb->len - hlen, mss);
	IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_ADD_PP_OK);
	return 0;

fail:
	IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_ADD_PP_FAIL);
	return -ENOMEM;
}
