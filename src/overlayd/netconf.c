/* rtnetlink requests for the overlay interface: see netconf.h. */
#include "overlayd/netconf.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* One request, one ACK: the kernel answers with an NLMSG_ERROR carrying 0 or -errno. */
static int nl_transact(struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned portid;
	int ret;
	ssize_t n;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = (unsigned)time(NULL);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	/* mnl_cb_run turns an NLMSG_ERROR with a non-zero code into -1 with errno set. */
	ret = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, NULL, NULL) < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return ret;
}

static int ifindex_of(const char *ifname)
{
	unsigned idx = if_nametoindex(ifname);

	return idx ? (int)idx : -ENODEV;
}

int od_netconf_link_up(const char *ifname, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	int idx = ifindex_of(ifname), rc;

	if (idx < 0) {
		snprintf(err, errlen, "interface %s not found", ifname);
		return idx;
	}
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = idx;
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	rc = nl_transact(nlh);
	if (rc)
		snprintf(err, errlen, "cannot bring %s up: %s", ifname, strerror(-rc));
	return rc;
}

static struct nlmsghdr *addr_msg(char *buf, uint16_t type, uint16_t flags, int idx, const struct zl_ip *ip,
				 unsigned prefix_len)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	size_t alen = ip->family == AF_INET ? 4 : 16;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)ip->family;
	ifa->ifa_prefixlen = (uint8_t)prefix_len;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)idx;
	/* No DAD: nobody else on a point-to-point tunnel can hold the address, and a tentative address
	 * could not be bound to for a while. */
	if (ip->family == AF_INET6)
		ifa->ifa_flags = IFA_F_NODAD;
	mnl_attr_put(nlh, IFA_LOCAL, alen, ip->addr);
	mnl_attr_put(nlh, IFA_ADDRESS, alen, ip->addr);
	return nlh;
}

int od_netconf_add_addr(const char *ifname, const struct zl_ip *ip, unsigned prefix_len, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int idx = ifindex_of(ifname), rc;

	if (idx < 0) {
		snprintf(err, errlen, "interface %s not found", ifname);
		return idx;
	}
	/* REPLACE: a re-run after a crash finds the same address harmlessly (the interface is new anyway). */
	rc = nl_transact(addr_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, idx, ip, prefix_len));
	if (rc) {
		char a[ZL_IP_STRLEN];

		snprintf(err, errlen, "cannot add %s/%u to %s: %s", zl_ip_format(ip, a), prefix_len, ifname,
			 strerror(-rc));
	}
	return rc;
}

int od_netconf_remove_addr(const char *ifname, const struct zl_ip *ip, unsigned prefix_len)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int idx = ifindex_of(ifname), rc;

	if (idx < 0)
		return 0;
	rc = nl_transact(addr_msg(buf, RTM_DELADDR, 0, idx, ip, prefix_len));
	return (rc == -ENODEV || rc == -EADDRNOTAVAIL) ? 0 : rc;
}
