/* rtnetlink link notifications: see linkwatch.h. */
#include "wg/io/linkwatch.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include "wg/io/log.h"

enum {
	LINKWATCH_BUF = 32 << 10,      /* a notification burst (many interfaces changing) in one read */
	LINKWATCH_READS_PER_EVENT = 16,
};

struct parse_ctx {
	struct wg_linkwatch *w;
	struct wg_link_event ev;
	bool ours;
};

static int parse_attr(const struct nlattr *attr, void *data)
{
	struct parse_ctx *pc = data;

	if (mnl_attr_get_type(attr) == IFLA_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		pc->ev.mtu = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int parse_msg(const struct nlmsghdr *nlh, void *data)
{
	struct parse_ctx *pc = data;
	const struct ifinfomsg *ifi;

	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return MNL_CB_OK;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifi)))
		return MNL_CB_OK;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index != pc->w->ifindex)
		return MNL_CB_OK;
	memset(&pc->ev, 0, sizeof(pc->ev));
	pc->ev.type = nlh->nlmsg_type == RTM_DELLINK ? WG_LINK_DELETED : WG_LINK_CHANGED;
	pc->ev.up = (ifi->ifi_flags & IFF_UP) != 0;
	mnl_attr_parse(nlh, sizeof(*ifi), parse_attr, pc);
	pc->w->fn(pc->w->ctx, &pc->ev);
	return MNL_CB_OK;
}

static void report_resync(struct wg_linkwatch *w)
{
	struct wg_link_event ev = { .type = WG_LINK_RESYNC };

	w->fn(w->ctx, &ev);
}

/* Reads what is pending (bounded per wakeup). The callback may close the watcher's owner down but not
 * free the watcher itself: the loop frees nothing while it dispatches. */
static void on_readable(struct wg_loop_source *src, uint32_t events)
{
	struct wg_linkwatch *w = wg_container_of(src, struct wg_linkwatch, src);
	struct parse_ctx pc = { .w = w };

	for (int i = 0; i < LINKWATCH_READS_PER_EVENT; i++) {
		ssize_t n = mnl_socket_recvfrom(w->nl, w->buf, LINKWATCH_BUF);

		if (n < 0) {
			if (errno == ENOBUFS)
				report_resync(w);
			else if (errno != EAGAIN && errno != EINTR)
				wg_log_error_rl("netlink receive: %s", strerror(errno));
			return;
		}
		/* seq 0 / portid 0: notifications are not answers to a request, nothing to match. */
		mnl_cb_run(w->buf, (size_t)n, 0, 0, parse_msg, &pc);
	}
}

int wg_linkwatch_open(struct wg_linkwatch *w, struct wg_loop *loop, int ifindex, wg_linkwatch_fn fn, void *ctx)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->src.fd = -1;
	w->loop = loop;
	w->ifindex = ifindex;
	w->fn = fn;
	w->ctx = ctx;
	w->buf = malloc(LINKWATCH_BUF);
	if (!w->buf)
		return -ENOMEM;
	w->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!w->nl) {
		err = -errno;
		goto fail;
	}
	if (mnl_socket_bind(w->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	err = wg_loop_add(loop, &w->src, mnl_socket_get_fd(w->nl), EPOLLIN, on_readable);
	if (err)
		goto fail;
	return 0;
fail:
	if (w->nl)
		mnl_socket_close(w->nl);
	w->nl = NULL;
	free(w->buf);
	w->buf = NULL;
	return err;
}

void wg_linkwatch_close(struct wg_linkwatch *w)
{
	if (w->nl) {
		wg_loop_del(w->loop, &w->src);
		mnl_socket_close(w->nl);
	}
	w->nl = NULL;
	free(w->buf);
	w->buf = NULL;
}
