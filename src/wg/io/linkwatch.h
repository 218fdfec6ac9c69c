/* Watches our interface through rtnetlink (RTNLGRP_LINK): deletion (`ip link del`, wg-quick down) stops
 * the daemon, MTU changes (`ip link set mtu`, wg-quick) reach the device's padding limit, and the
 * up/down state is reported for logging.
 *
 * A deletion notice for our index is double-checked against the TUN fd by the owner: an interface moved
 * to another network namespace also disappears from ours but keeps working. */
#ifndef WG_IO_LINKWATCH_H
#define WG_IO_LINKWATCH_H
#include <stdbool.h>
#include "wg/io/loop.h"

struct mnl_socket;

enum wg_link_event_type {
	WG_LINK_CHANGED,   /* RTM_NEWLINK for our index: mtu and up are valid */
	WG_LINK_DELETED,   /* RTM_DELLINK for our index */
	WG_LINK_RESYNC,    /* notifications were lost (socket overrun): re-check the state directly */
};

struct wg_link_event {
	enum wg_link_event_type type;
	unsigned mtu;      /* 0 when the message carried none */
	bool up;
};

typedef void (*wg_linkwatch_fn)(void *ctx, const struct wg_link_event *ev);

struct wg_linkwatch {
	struct mnl_socket *nl;
	struct wg_loop *loop;
	struct wg_loop_source src;
	int ifindex;
	wg_linkwatch_fn fn;
	void *ctx;
	char *buf;         /* receive buffer */
};

/* 0 or -errno. */
int wg_linkwatch_open(struct wg_linkwatch *w, struct wg_loop *loop, int ifindex, wg_linkwatch_fn fn, void *ctx);
void wg_linkwatch_close(struct wg_linkwatch *w);
#endif
