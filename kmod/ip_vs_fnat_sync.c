// SPDX-License-Identifier: GPL-2.0-only
/*
 * IPVS connection sync of FULLNAT and SYNPROXY connections (kmod/CLUSTER.md).
 *
 * Upstream's sync message (version 1) carries a connection's addresses,
 * ports, state and timeout, and options of (type, length, data). A FULLNAT
 * connection needs more on the director that takes it over: the local
 * address and port its owner gave it and the sequence numbers FULLNAT moved;
 * a SYNPROXY one the offsets between the cookie the client knows and the
 * real server's numbers. Two options carry them, both mandatory, so that a
 * stock receiver drops such a connection (and says so at debug level 3)
 * instead of creating one that sends with the wrong addresses:
 *
 * IPVS_OPT_FULLNAT, 20 bytes + the local address (4 or 16 bytes, the
 * connection's family), network order:
 *	local port (2), flags (1: IP_VS_FNAT_F_SEQ, _FDATA, _PP_ACKED),
 *	PROXY protocol version (1), its header's length (1), zero (3),
 *	init_seq (4), delta (4), fdata_seq (4), local address
 *
 * IPVS_OPT_SYNPROXY, 24 bytes:
 *	delta (4), cookie ISN (4), client ISN (4), timestamp offsets client to
 *	real server (4) and back (4), flags (1: IP_VS_SP_F_EST, _TS), window
 *	scales of the client, ours to the client, the real server's (1 each,
 *	15: none)
 *
 * A connection is sent once a backup could carry it on: a FULLNAT one bound to
 * its local port, a SYNPROXY one once the real server has answered. Version 0
 * messages have no options: they leave such connections out.
 *
 * On the backup the connection is created bound to its owner's local address
 * and port, never one of the backup's own (ip_vs_fnat_conn_new()); its port
 * is held in the backup's pool of that address, so that the backup does not
 * give it to a connection of its own once it has taken the address over.
 */

#define KMSG_COMPONENT "IPVS"
#define pr_fmt(fmt) KMSG_COMPONENT ": " fmt

#include <linux/kernel.h>
#include <linux/sysctl.h>
#include <net/tcp.h>
#include <net/ip_vs_compat.h>
#include <net/ip_vs.h>

#define IP_VS_SYNC_FNAT_LEN	20	/* without the address */
#define IP_VS_SYNC_SP_LEN	24

/* fullnat_sync_flush_ms in jiffies, at least one */
unsigned long ip_vs_fnat_sync_flush(struct netns_ipvs *ipvs)
{
	return max(msecs_to_jiffies(READ_ONCE(ipvs->fnat->sysctl_sync_flush_ms)),
		   1UL);
}

/* How often the master thread looks for a message to flush: half the flush
 * time, so that a connection waits at most 1.5 times it; at least every
 * second, as upstream.
 */
unsigned long ip_vs_fnat_sync_check_period(struct netns_ipvs *ipvs)
{
	return clamp(ip_vs_fnat_sync_flush(ipvs) / 2, 1UL,
		     (unsigned long)IPVS_SYNC_CHECK_PERIOD);
}

/* fullnat_sync_resend: writing 1 queues every connection of the namespace
 * for the master daemon (-ESRCH without one), for a director that joins
 * the cluster or rejoins it with an empty table; it reads 0.
 */
int ip_vs_fnat_sync_resend_sysctl(IP_VS_CTL_CONST struct ctl_table *table,
				  int write, void *buffer, size_t *lenp,
				  loff_t *ppos)
{
	struct ip_vs_fnat_net *fn =
		container_of((int *)table->data, struct ip_vs_fnat_net,
			     sysctl_sync_resend);
	struct ctl_table tmp = *table;
	int val = 0, ret;

	tmp.data = &val;
	ret = proc_dointvec_minmax(&tmp, write, buffer, lenp, ppos);
	if (ret || !write)
		return ret;
	if (!(READ_ONCE(fn->ipvs->sync_state) & IP_VS_STATE_MASTER))
		return -ESRCH;
	ip_vs_conn_sync_all(fn->ipvs);
	return 0;
}

static unsigned int ip_vs_sync_addr_len(int af)
{
	return af == AF_INET6 ? sizeof(struct in6_addr) : sizeof(__be32);
}

/* The bytes of our options that cp's sync entry carries, or -1 when cp is
 * not to be synced yet (a backup could not carry it on).
 */
int ip_vs_fnat_sync_len(const struct ip_vs_conn *cp)
{
	int len = 0;

	if (cp->flags & IP_VS_CONN_F_TEMPLATE)
		return 0;
	if (IP_VS_FWD_METHOD(cp) == IP_VS_CONN_F_FULLNAT) {
		if (!cp->fnat.laddr)
			return -1;
		len += 2 + IP_VS_SYNC_FNAT_LEN + ip_vs_sync_addr_len(cp->af);
	}
	if (cp->flags & IP_VS_CONN_F_SYNPROXY) {
		const struct ip_vs_synproxy_conn *sp = ip_vs_sp_of(cp);

		/* pairs with the release in ip_vs_synproxy_out: delta is valid */
		if (!sp || !(smp_load_acquire(&sp->flags) & IP_VS_SP_F_EST))
			return -1;
		len += 2 + IP_VS_SYNC_SP_LEN;
	}
	return len;
}

/* Write the options that ip_vs_fnat_sync_len() counted, len bytes, at p;
 * returns the end.  len, not the connection, says what to write: a backup's
 * sync thread may set a copy's IP_VS_CONN_F_SYNPROXY in between (a director
 * that is master and backup at once), and the buffer has room for len only.
 */
u8 *ip_vs_fnat_sync_put(const struct ip_vs_conn *cp, u8 *p, int len)
{
	unsigned int alen = ip_vs_sync_addr_len(cp->af);

	if (cp->flags & IP_VS_CONN_F_TEMPLATE)
		return p;
	if (IP_VS_FWD_METHOD(cp) == IP_VS_CONN_F_FULLNAT && cp->fnat.laddr) {
		*p++ = IPVS_OPT_FULLNAT;
		*p++ = IP_VS_SYNC_FNAT_LEN + alen;
		memcpy(p, &cp->fnat.lport, sizeof(cp->fnat.lport));
		p[2] = READ_ONCE(cp->fnat.flags) & IP_VS_FNAT_F_SYNCED;
		p[3] = cp->fnat.pp;
		p[4] = cp->fnat.pp_len;
		memset(p + 5, 0, 3);
		put_unaligned_be32(cp->fnat.init_seq, p + 8);
		put_unaligned_be32(cp->fnat.delta, p + 12);
		put_unaligned_be32(cp->fnat.fdata_seq, p + 16);
		memcpy(p + IP_VS_SYNC_FNAT_LEN, &cp->fnat.lip, alen);
		p += IP_VS_SYNC_FNAT_LEN + alen;
		len -= 2 + IP_VS_SYNC_FNAT_LEN + alen;
	}
	if (len >= 2 + IP_VS_SYNC_SP_LEN) {
		const struct ip_vs_synproxy_conn *sp = ip_vs_sp_of(cp);

		*p++ = IPVS_OPT_SYNPROXY;
		*p++ = IP_VS_SYNC_SP_LEN;
		put_unaligned_be32(sp->delta, p);
		put_unaligned_be32(sp->isn, p + 4);
		put_unaligned_be32(sp->cisn, p + 8);
		put_unaligned_be32(sp->ts_coff, p + 12);
		put_unaligned_be32(sp->ts_soff, p + 16);
		p[20] = READ_ONCE(sp->flags) &
			(IP_VS_SP_F_EST | IP_VS_SP_F_TS);
		p[21] = sp->c_wscale;
		p[22] = sp->d_wscale;
		p[23] = sp->rs_wscale;
		p += IP_VS_SYNC_SP_LEN;
	}
	return p;
}

static bool ip_vs_sync_wscale_ok(u8 ws)
{
	return ws <= TCP_MAX_WSCALE || ws == IP_VS_SP_WS_NONE;
}

/* Decode option type (IPVS_OPT_FULLNAT or IPVS_OPT_SYNPROXY) of plen bytes
 * at p, of a connection of family af, into fs. -EINVAL for a malformed one
 * (the receiver drops the message, as for its own options) or one seen twice.
 */
int ip_vs_fnat_sync_parse(u8 type, const u8 *p, unsigned int plen, int af,
			  struct ip_vs_fnat_sync *fs)
{
	unsigned int alen = ip_vs_sync_addr_len(af);

	if (type == IPVS_OPT_FULLNAT) {
		if (plen != IP_VS_SYNC_FNAT_LEN + alen ||
		    (fs->have & IP_VS_FNAT_SYNC_F_FNAT))
			return -EINVAL;
		memcpy(&fs->lport, p, sizeof(fs->lport));
		fs->flags = p[2] & IP_VS_FNAT_F_SYNCED;
		fs->pp = p[3];
		fs->pp_len = p[4];
		fs->init_seq = get_unaligned_be32(p + 8);
		fs->delta = get_unaligned_be32(p + 12);
		fs->fdata_seq = get_unaligned_be32(p + 16);
		memset(&fs->lip, 0, sizeof(fs->lip));
		memcpy(&fs->lip, p + IP_VS_SYNC_FNAT_LEN, alen);
		if (!fs->lport || fs->pp > IP_VS_PROXY_PROTOCOL_V2 ||
		    (!fs->pp && fs->pp_len))
			return -EINVAL;
		fs->have |= IP_VS_FNAT_SYNC_F_FNAT;
		return 0;
	}
	if (type != IPVS_OPT_SYNPROXY || plen != IP_VS_SYNC_SP_LEN ||
	    (fs->have & IP_VS_FNAT_SYNC_F_SP))
		return -EINVAL;
	fs->sp_delta = get_unaligned_be32(p);
	fs->sp_isn = get_unaligned_be32(p + 4);
	fs->sp_cisn = get_unaligned_be32(p + 8);
	fs->sp_ts_coff = get_unaligned_be32(p + 12);
	fs->sp_ts_soff = get_unaligned_be32(p + 16);
	fs->sp_flags = p[20] & (IP_VS_SP_F_EST | IP_VS_SP_F_TS);
	fs->sp_c_wscale = p[21];
	fs->sp_d_wscale = p[22];
	fs->sp_rs_wscale = p[23];
	if (!(fs->sp_flags & IP_VS_SP_F_EST) ||
	    !ip_vs_sync_wscale_ok(fs->sp_c_wscale) ||
	    !ip_vs_sync_wscale_ok(fs->sp_d_wscale) ||
	    !ip_vs_sync_wscale_ok(fs->sp_rs_wscale))
		return -EINVAL;
	fs->have |= IP_VS_FNAT_SYNC_F_SP;
	return 0;
}

static void ip_vs_fnat_sync_refused(struct netns_ipvs *ipvs, const char *why)
{
	IP_VS_FNAT_INC_STATS(ipvs, FULLNAT_SYNC_REFUSED);
	IP_VS_DBG(3, "BACKUP, connection dropped: %s\n", why);
}

/* Before the backup looks a synced connection up or creates it (process
 * context): a FULLNAT one needs its local address and port, whose pool here
 * is prepared now. Nonzero: drop the connection.
 */
int ip_vs_fnat_sync_check(struct netns_ipvs *ipvs,
			  const struct ip_vs_conn_param *param,
			  unsigned int flags)
{
	const struct ip_vs_fnat_sync *fs = param->fnat_sync;

	if (flags & IP_VS_CONN_F_TEMPLATE)
		return 0;
	if (!fs || !(fs->have & IP_VS_FNAT_SYNC_F_FNAT)) {
		if ((flags & IP_VS_CONN_F_FWD_MASK) != IP_VS_CONN_F_FULLNAT)
			return 0;
		/* a version 0 message, or a sender that is not ours */
		ip_vs_fnat_sync_refused(ipvs,
					"FULLNAT without its local address");
		return -EINVAL;
	}
	if (ip_vs_laddr_sync_prepare(ipvs, param->af, &fs->lip)) {
		ip_vs_fnat_sync_refused(ipvs, "no memory for a local address");
		return -ENOMEM;
	}
	return 0;
}

/* Does the backup's copy cp have the local address and port of the message?
 * A client that reuses its port gets a new local port on the owner: the old
 * copy then goes and the new one is created.
 */
bool ip_vs_fnat_sync_same(const struct ip_vs_conn *cp,
			  const struct ip_vs_fnat_sync *fs)
{
	bool bound = ip_vs_fnat_has_state(cp) && cp->fnat.laddr;

	if (!fs || !(fs->have & IP_VS_FNAT_SYNC_F_FNAT))
		return !bound;
	return bound && cp->fnat.lport == fs->lport &&
	       ip_vs_addr_equal(cp->af, &cp->fnat.lip, &fs->lip);
}

/* ip_vs_conn_new(): bind a new connection to a local address and port, or
 * refuse it (nonzero). A synced FULLNAT connection takes its owner's, a
 * scheduled one a port of its service's local addresses. fullnat: the
 * method ip_vs_conn_new() read once, which ip_vs_bind_dest() gives cp
 * (dest's, or without dest the sender's). Under RCU.
 */
int ip_vs_fnat_conn_new(struct ip_vs_conn *cp,
			const struct ip_vs_fnat_sync *fs,
			struct ip_vs_dest *dest, bool fullnat)
{
	if (cp->flags & IP_VS_CONN_F_TEMPLATE)
		return 0;
	/* A director's own connection: it has the state exactly when its
	 * real server is FULLNAT, as ip_vs_conn_new() read it once
	 */
	if (!(cp->flags & IP_VS_CONN_F_SYNC))
		return ip_vs_fnat_has_state(cp) ?
		       ip_vs_fnat_conn_bind(cp, rcu_dereference(dest->svc)) : 0;

	if (!fs || !(fs->have & IP_VS_FNAT_SYNC_F_FNAT)) {
		if (!fullnat)
			return 0;
		/* FULLNAT here (our real server's method, or the sender's
		 * without one) but not on the sender: no local port
		 */
		pr_warn_ratelimited("sync: FULLNAT connection without the sender's local address: dropped\n");
		goto refused;
	}
	/* and the other way round; without dest the message decides */
	if (dest && !fullnat) {
		pr_warn_ratelimited("sync: FULLNAT connection to a real server that is not FULLNAT here: dropped\n");
		goto refused;
	}
	if (ip_vs_fnat_conn_bind_synced(cp, &fs->lip, fs->lport)) {
		ip_vs_fnat_sync_refused(cp->ipvs,
					"its local port is held here");
		return -EADDRINUSE;
	}
	return 0;

refused:
	IP_VS_FNAT_INC_STATS(cp->ipvs, FULLNAT_SYNC_REFUSED);
	return -EINVAL;
}

/* After the backup created or updated its copy cp of a connection: the
 * state that FULLNAT and SYNPROXY keep. Only a copy (IP_VS_CONN_F_SYNC)
 * takes it; a director's own connections are its own to change.
 */
void ip_vs_fnat_sync_apply(struct ip_vs_conn *cp,
			   const struct ip_vs_fnat_sync *fs)
{
	if (!fs || (cp->flags & IP_VS_CONN_F_TEMPLATE) ||
	    !(cp->flags & IP_VS_CONN_F_SYNC))
		return;
	if ((fs->have & IP_VS_FNAT_SYNC_F_FNAT) && ip_vs_fnat_has_state(cp) &&
	    cp->fnat.laddr) {
		spin_lock_bh(&cp->lock);
		cp->fnat.pp = fs->pp;
		cp->fnat.pp_len = fs->pp_len;
		cp->fnat.init_seq = fs->init_seq;
		cp->fnat.delta = fs->delta;
		cp->fnat.fdata_seq = fs->fdata_seq;
		WRITE_ONCE(cp->fnat.flags,
			   (cp->fnat.flags & ~IP_VS_FNAT_F_SYNCED) | fs->flags);
		spin_unlock_bh(&cp->lock);
	}
	/* SYNPROXY's numbers are fixed once the real server has answered:
	 * the first message that has them sets them
	 */
	if ((fs->have & IP_VS_FNAT_SYNC_F_SP) && cp->protocol == IPPROTO_TCP &&
	    !(cp->flags & IP_VS_CONN_F_SYNPROXY) && !cp->sp) {
		struct ip_vs_synproxy_conn *sp = ip_vs_synproxy_conn_alloc();

		if (!sp) {
			/* a later message of the connection tries again */
			ip_vs_fnat_sync_refused(cp->ipvs,
						"no memory for SYNPROXY state");
			return;
		}
		sp->cp = cp;
		sp->delta = fs->sp_delta;
		sp->isn = fs->sp_isn;
		sp->cisn = fs->sp_cisn;
		sp->ts_coff = fs->sp_ts_coff;
		sp->ts_soff = fs->sp_ts_soff;
		sp->c_wscale = fs->sp_c_wscale;
		sp->d_wscale = fs->sp_d_wscale;
		sp->rs_wscale = fs->sp_rs_wscale;
		sp->flags = fs->sp_flags;
		/* the numbers before the pointer (ip_vs_sp_of()), the pointer
		 * before the flag
		 */
		smp_store_release(&cp->sp, sp);
		spin_lock_bh(&cp->lock);
		cp->flags |= IP_VS_CONN_F_SYNPROXY;
		spin_unlock_bh(&cp->lock);
	}
	IP_VS_FNAT_INC_STATS(cp->ipvs, FULLNAT_SYNC_CONN);
}
