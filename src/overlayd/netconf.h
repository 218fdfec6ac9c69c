/* Interface configuration over rtnetlink (libmnl): bring the overlay interface up and give it the
 * node's overlay address with the cluster's prefix length, so the kernel adds the route for the whole
 * overlay range through it (IPv4 and IPv6; IPv6 without duplicate address detection, so the address is
 * usable at once and the membership listener can bind to it). The interface itself is created and
 * deleted by the WireGuard engine (a TUN device goes away when its fd closes), and its addresses and
 * routes with it; od_netconf_remove_addr is the explicit, orderly half of that. */
#ifndef OD_NETCONF_H
#define OD_NETCONF_H
#include "overlay/cidr.h"

/* 0 or -errno (message in err). */
int od_netconf_link_up(const char *ifname, char *err, size_t errlen);
int od_netconf_add_addr(const char *ifname, const struct zl_ip *ip, unsigned prefix_len, char *err, size_t errlen);
/* -ENODEV / -EADDRNOTAVAIL (already gone) count as success. */
int od_netconf_remove_addr(const char *ifname, const struct zl_ip *ip, unsigned prefix_len);
#endif
