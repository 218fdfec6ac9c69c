/* A minimal epoll event loop: each watched file descriptor is a struct wg_loop_source embedded in the
 * object that owns it; readiness calls the source's handler with the epoll event mask. Level-triggered,
 * so a handler may do a bounded amount of work (one batch) and come back on the next round, which keeps
 * the TUN device, the UDP sockets and the UAPI clients fair to each other.
 *
 * After every handler the loop calls after_event (the engine flushes its UDP send queue there, so a batch
 * of packets produced by one wakeup leaves in one sendmmsg). Single-threaded. */
#ifndef WG_IO_LOOP_H
#define WG_IO_LOOP_H
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#define wg_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct wg_loop_source;
typedef void (*wg_loop_fn)(struct wg_loop_source *src, uint32_t events);

struct wg_loop_source {
	int fd;          /* -1 when not registered */
	wg_loop_fn fn;
};

struct wg_loop {
	int epfd;
	void (*after_event)(void *ctx);
	void *ctx;
};

/* 0 or -errno. */
int wg_loop_init(struct wg_loop *loop);
void wg_loop_destroy(struct wg_loop *loop);
/* Watches fd for events (EPOLLIN, EPOLLOUT). 0 or -errno. */
int wg_loop_add(struct wg_loop *loop, struct wg_loop_source *src, int fd, uint32_t events, wg_loop_fn fn);
int wg_loop_mod(struct wg_loop *loop, struct wg_loop_source *src, uint32_t events);
/* Stops watching (call before closing the fd). Safe on an unregistered source. */
void wg_loop_del(struct wg_loop *loop, struct wg_loop_source *src);
/* Waits up to timeout_ms (-1 = forever) and dispatches what is ready. Returns the number of events
 * handled, 0 on timeout or EINTR, -errno on failure.
 * A handler may delete or free only its own source: another source that is ready in the same round
 * must stay alive until wg_loop_wait returns (sources are freed only by their own handler or outside
 * the loop). */
int wg_loop_wait(struct wg_loop *loop, int timeout_ms);
#endif
