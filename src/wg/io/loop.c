/* The epoll loop: see loop.h. */
#include "wg/io/loop.h"

#include <errno.h>
#include <unistd.h>

enum { LOOP_MAX_EVENTS = 64 };

int wg_loop_init(struct wg_loop *loop)
{
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->after_event = NULL;
	loop->ctx = NULL;
	return loop->epfd < 0 ? -errno : 0;
}

void wg_loop_destroy(struct wg_loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

int wg_loop_add(struct wg_loop *loop, struct wg_loop_source *src, int fd, uint32_t events, wg_loop_fn fn)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	src->fd = fd;
	src->fn = fn;
	return 0;
}

int wg_loop_mod(struct wg_loop *loop, struct wg_loop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

void wg_loop_del(struct wg_loop *loop, struct wg_loop_source *src)
{
	if (src->fd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	src->fd = -1;
}

int wg_loop_wait(struct wg_loop *loop, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n = epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct wg_loop_source *src = evs[i].data.ptr;

		/* An earlier handler of this round may have unregistered this source (e.g. the UDP sockets
		 * were rebound by a UAPI request): its fd is then -1 and the event is stale. */
		if (src->fd < 0)
			continue;
		src->fn(src, evs[i].events);
		if (loop->after_event)
			loop->after_event(loop->ctx);
	}
	return n;
}
