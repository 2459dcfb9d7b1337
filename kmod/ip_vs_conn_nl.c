// SPDX-License-Identifier: GPL-2.0-only
/*
 * IPVS_CMD_GET_CONN: the connection table of a namespace over generic
 * netlink, the binary counterpart of /proc/net/ip_vs_conn with what that
 * file leaves out (the FULLNAT local side, flags, the firewall mark, exact
 * timers, the SYNPROXY state).
 *
 * The dump walks the table with ip_vs_conn_walk() (ip_vs_conn.c), which
 * resumes each part where the previous one stopped. Optionally
 * IPVS_CMD_ATTR_SERVICE names a service (as in GET_DEST): only the
 * connections and templates whose real server belongs to it are listed;
 * -ESRCH when there is no such service.
 *
 * A connection that exists from the start of the dump to its end is
 * listed once, unless the table changes under the dump at the point
 * where one part ends and the next begins (the connection that ended the
 * part expired meanwhile): then one entry of that chain may be missed or
 * repeated, as with /proc. Where the table can be replaced (resized, from
 * 7.x on), a dump that crossed a replacement is flagged NLM_F_DUMP_INTR.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <net/genetlink.h>
#include <net/ip_vs.h>

/* The service a filtered dump lists, by key: compared with the service of
 * each connection's real server, read under RCU.
 */
struct ip_vs_conn_filter {
	bool			on;
	int			af;
	u16			protocol;
	union nf_inet_addr	addr;
	__be16			port;
	u32			fwmark;
};

struct ip_vs_conn_dump {
	struct sk_buff			*skb;
	struct netlink_callback		*cb;
	const struct ip_vs_conn_filter	*filter;
	const struct ip_vs_conn_walk	*w;
};

static bool ip_vs_conn_filter_match(const struct ip_vs_conn_filter *f,
				    const struct ip_vs_conn *cp)
{
	const struct ip_vs_dest *dest = READ_ONCE(cp->dest);
	const struct ip_vs_service *svc;

	if (!f->on)
		return true;
	if (!dest)
		return false;
	svc = rcu_dereference(dest->svc);
	if (!svc || svc->af != f->af || svc->fwmark != f->fwmark)
		return false;
	if (f->fwmark)
		return true;
	return svc->protocol == f->protocol && svc->port == f->port &&
	       ip_vs_addr_equal(f->af, &svc->addr, &f->addr);
}

static int ip_vs_conn_fill(struct sk_buff *skb, const struct ip_vs_conn *cp)
{
	const struct ip_vs_pe *pe = READ_ONCE(cp->pe);
	const struct ip_vs_synproxy_conn *sp = ip_vs_sp_of(cp);
	u32 flags = READ_ONCE(cp->flags);
	long expires = READ_ONCE(cp->timer.expires) - jiffies;

	if (nla_put_u16(skb, IPVS_CONN_ATTR_AF, cp->af) ||
	    nla_put_u16(skb, IPVS_CONN_ATTR_PROTOCOL, cp->protocol) ||
	    nla_put(skb, IPVS_CONN_ATTR_CADDR, sizeof(cp->caddr), &cp->caddr) ||
	    nla_put_be16(skb, IPVS_CONN_ATTR_CPORT, cp->cport) ||
	    nla_put(skb, IPVS_CONN_ATTR_VADDR, sizeof(cp->vaddr), &cp->vaddr) ||
	    nla_put_be16(skb, IPVS_CONN_ATTR_VPORT, cp->vport) ||
	    nla_put(skb, IPVS_CONN_ATTR_DADDR, sizeof(cp->daddr), &cp->daddr) ||
	    nla_put_be16(skb, IPVS_CONN_ATTR_DPORT, cp->dport) ||
	    nla_put_u16(skb, IPVS_CONN_ATTR_DAF, cp->daf) ||
	    nla_put_u32(skb, IPVS_CONN_ATTR_FLAGS, flags) ||
	    nla_put_string(skb, IPVS_CONN_ATTR_STATE, ip_vs_state_name(cp)) ||
	    nla_put_u32(skb, IPVS_CONN_ATTR_EXPIRES,
			expires > 0 ? jiffies_to_msecs(expires) : 0) ||
	    nla_put_u32(skb, IPVS_CONN_ATTR_TIMEOUT,
			jiffies_to_msecs(READ_ONCE(cp->timeout))) ||
	    nla_put_u32(skb, IPVS_CONN_ATTR_FWMARK, cp->fwmark))
		return -EMSGSIZE;
	/* the local side is fixed once the connection is bound */
	if (ip_vs_fnat_has_state(cp) && READ_ONCE(cp->fnat.laddr) &&
	    (nla_put(skb, IPVS_CONN_ATTR_LADDR, sizeof(cp->fnat.lip),
		     &cp->fnat.lip) ||
	     nla_put_be16(skb, IPVS_CONN_ATTR_LPORT, cp->fnat.lport)))
		return -EMSGSIZE;
	if ((flags & IP_VS_CONN_F_SYNPROXY) && sp &&
	    nla_put_u32(skb, IPVS_CONN_ATTR_SYNPROXY,
			(READ_ONCE(sp->flags) & IP_VS_SP_F_EST) ?
			IPVS_CONN_SYNPROXY_ANSWERED : 0))
		return -EMSGSIZE;
	if (pe && (nla_put_string(skb, IPVS_CONN_ATTR_PE_NAME, pe->name) ||
		   (cp->pe_data_len &&
		    nla_put(skb, IPVS_CONN_ATTR_PE_DATA, cp->pe_data_len,
			    cp->pe_data))))
		return -EMSGSIZE;
	return 0;
}

/* One message per connection; non-zero (the skb is full) stops the walk,
 * which resumes with this connection in the next part.
 */
static int ip_vs_conn_dump_one(struct ip_vs_conn *cp, void *arg)
{
	struct ip_vs_conn_dump *d = arg;
	struct nlattr *nest;
	void *hdr;

	if (!ip_vs_conn_filter_match(d->filter, cp))
		return 0;
	hdr = genlmsg_put(d->skb, NETLINK_CB(d->cb->skb).portid,
			  d->cb->nlh->nlmsg_seq, &ip_vs_genl_family,
			  NLM_F_MULTI, IPVS_CMD_GET_CONN);
	if (!hdr)
		return -EMSGSIZE;
	/* a table replaced since the dump began flags the message */
	d->cb->seq = d->w->gen + 1;
	genl_dump_check_consistent(d->cb, hdr);
	nest = nla_nest_start(d->skb, IPVS_CMD_ATTR_CONN);
	if (!nest || ip_vs_conn_fill(d->skb, cp)) {
		genlmsg_cancel(d->skb, hdr);
		return -EMSGSIZE;
	}
	nla_nest_end(d->skb, nest);
	genlmsg_end(d->skb, hdr);
	return 0;
}

/* The service key of a filtered dump, or -ESRCH */
static int ip_vs_conn_filter_init(struct netns_ipvs *ipvs,
				  struct nlattr *nla,
				  struct ip_vs_conn_filter *f)
{
	const struct ip_vs_service *svc;
	int ret = 0;

	if (!nla)
		return 0;
	rcu_read_lock();
	svc = ip_vs_genl_find_service(ipvs, nla);
	if (IS_ERR_OR_NULL(svc)) {
		ret = svc ? PTR_ERR(svc) : -ESRCH;
	} else {
		f->on = true;
		f->af = svc->af;
		f->protocol = svc->protocol;
		f->addr = svc->addr;
		f->port = svc->port;
		f->fwmark = svc->fwmark;
	}
	rcu_read_unlock();
	return ret;
}

/* cb->ctx holds the walk's position between the parts of a dump */
int ip_vs_genl_dump_conns(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct netns_ipvs *ipvs = net_ipvs(sock_net(skb->sk));
	struct ip_vs_conn_walk *w = (struct ip_vs_conn_walk *)cb->ctx;
	struct ip_vs_conn_filter filter = {};
	struct ip_vs_conn_dump d = {
		.skb = skb, .cb = cb, .filter = &filter, .w = w,
	};
	int ret;

	BUILD_BUG_ON(sizeof(*w) > sizeof(cb->ctx));
	ret = ip_vs_conn_filter_init(ipvs,
				     ip_vs_genl_dump_attrs(cb)[IPVS_CMD_ATTR_SERVICE],
				     &filter);
	if (ret)
		return ret;
	ret = ip_vs_conn_walk(ipvs, w, ip_vs_conn_dump_one, &d);
	/* and NLMSG_DONE, when the last part saw the table replaced */
	cb->seq = w->gen + 1;
	if (ret && !skb->len)
		return ret;	/* not even one connection fits */
	return skb->len;
}
