/* The UAPI socket: AF_UNIX stream at DIR/IFNAME.sock (DIR is /var/run/wireguard for `wg` and wg-quick),
 * one wg_uapi_session per connection. Replies are buffered and written as the client reads them: a
 * client that stops reading only stalls itself (its requests stop being read once WG_UAPI_OUT_HIGH
 * bytes wait), never the loop.
 *
 * The socket file is the daemon's handle in the file system: deleting it asks the daemon to exit (the
 * owner's `gone` callback runs; watched with inotify, and wg_uapi_server_present for a periodic check). */
#ifndef WG_IO_UAPI_SERVER_H
#define WG_IO_UAPI_SERVER_H
#include <stdbool.h>
#include <sys/types.h>
#include <sys/un.h>
#include "wg/core/device.h"
#include "wg/io/loop.h"

#define WG_UAPI_DEFAULT_DIR "/var/run/wireguard"

enum {
	WG_UAPI_MAX_CONNS = 64,
	WG_UAPI_OUT_HIGH = 1 << 20,
};

struct wg_uapi_conn;

struct wg_uapi_server {
	struct wg_loop *loop;
	struct wg_device *dev;
	struct wg_loop_source listen_src;
	struct wg_loop_source inotify_src;
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t st_dev;                   /* identity of the socket file we created */
	ino_t st_ino;
	bool created;
	struct wg_uapi_conn *conns;
	unsigned nconns;
	void (*gone)(void *ctx);
	void *ctx;
};

/* Run before creating the interface: prepares DIR (mkdir -p, mode 0755) and looks at DIR/IFNAME.sock.
 * -EADDRINUSE when a running instance answers on it; a stale socket (connection refused) is removed.
 * -ENAMETOOLONG when the path does not fit a socket address, -EEXIST when a non-socket is in the way. */
int wg_uapi_server_check(const char *dir, const char *ifname);

/* Creates the socket (0600, under umask 077) and starts accepting. dir NULL = WG_UAPI_DEFAULT_DIR.
 * 0 or -errno. */
int wg_uapi_server_open(struct wg_uapi_server *s, struct wg_loop *loop, struct wg_device *dev, const char *dir,
			const char *ifname, void (*gone)(void *ctx), void *ctx);
/* Closes every connection and the socket; removes the socket file if it is still the one we made. */
void wg_uapi_server_close(struct wg_uapi_server *s);
/* false once our socket file has been removed or replaced. */
bool wg_uapi_server_present(const struct wg_uapi_server *s);
#endif
