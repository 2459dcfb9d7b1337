/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one place where our sources meet the differences between the kernel
 * lines they build for (6.1, 6.12, 7.x): every LINUX_VERSION_CODE test is
 * here, and the code elsewhere is written in the newest kernel's terms.
 * kmod/PORTING.md says how a new line is added.
 */
#ifndef _NET_IP_VS_COMPAT_H
#define _NET_IP_VS_COMPAT_H

#include <linux/version.h>
#include <linux/timer.h>
#include <linux/sysctl.h>
#include <net/net_namespace.h>
#include <net/genetlink.h>

/* linux/unaligned.h from 6.12 (asm/unaligned.h before) */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

/* skb_gso_segment() moved to net/gso.h in 6.4 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#include <net/gso.h>
#endif

/* 6.16 renamed from_timer() to timer_container_of() (7.x has only the new name) */
#ifndef timer_container_of
#define timer_container_of(var, callback_timer, timer_fieldname) \
	from_timer(var, callback_timer, timer_fieldname)
#endif

/* proc handlers take a const ctl_table from 6.11 on */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define IP_VS_CTL_CONST const
#else
#define IP_VS_CTL_CONST
#endif

/* register_net_sysctl_sz() (a table without a terminating entry) from 6.6 */
static inline struct ctl_table_header *
ip_vs_register_net_sysctl(struct net *net, const char *path,
			  struct ctl_table *tbl, size_t n)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
	return register_net_sysctl_sz(net, path, tbl, n);
#else
	return register_net_sysctl(net, path, tbl);
#endif
}

/* the attributes of a generic netlink dump: genl_info_dump() from 6.2 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define ip_vs_genl_dump_attrs(cb)	(genl_info_dump(cb)->attrs)
#else
#define ip_vs_genl_dump_attrs(cb)	(genl_dumpit_info(cb)->attrs)
#endif

/* IPVS sysctls show in a namespace of an unprivileged user from 6.10 on */
#define IP_VS_SYSCTLS_HIDDEN_UNPRIV \
	(LINUX_VERSION_CODE < KERNEL_VERSION(6, 10, 0))

/*
 * The lock that serializes service configuration: the global __ip_vs_mutex
 * up to 6.12, a per-namespace ipvs->service_mutex in 7.x (upstream's move to
 * per-netns resizable service and connection tables, checked on the lines
 * we build: 6.12 has the former, 7.3 the latter).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 0, 0)
/* a macro: include/net/ip_vs.h includes this before struct netns_ipvs */
#define ip_vs_service_mutex(ipvs)	(&(ipvs)->service_mutex)
#else
struct netns_ipvs;
extern struct mutex __ip_vs_mutex;
static inline struct mutex *ip_vs_service_mutex(struct netns_ipvs *ipvs)
{
	return &__ip_vs_mutex;
}
#endif

#endif /* _NET_IP_VS_COMPAT_H */
