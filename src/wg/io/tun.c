/* The TUN device: see tun.h. */
#include "wg/io/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char tun_clone_path[] = "/dev/net/tun";

/* Interface ioctls (MTU, index) need some socket of the current network namespace; any family does. */
static int ifreq_ioctl(unsigned long req, struct ifreq *ifr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0)
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, req, ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

static void ifreq_name(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof(*ifr));
	memcpy(ifr->ifr_name, name, strnlen(name, IFNAMSIZ - 1));
}

int wg_tun_set_mtu(const char *name, unsigned mtu)
{
	struct ifreq ifr;

	ifreq_name(&ifr, name);
	ifr.ifr_mtu = (int)mtu;
	return ifreq_ioctl(SIOCSIFMTU, &ifr);
}

int wg_tun_get_mtu(const struct wg_tun *t)
{
	struct ifreq ifr;
	int err;

	ifreq_name(&ifr, t->name);
	err = ifreq_ioctl(SIOCGIFMTU, &ifr);
	return err ? err : ifr.ifr_mtu;
}

int wg_tun_open(struct wg_tun *t, const char *name, unsigned mtu)
{
	struct ifreq ifr;
	int err;

	t->fd = -1;
	t->ifindex = 0;
	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	t->fd = open(tun_clone_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0)
		return -errno;
	ifreq_name(&ifr, name);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0)
		goto fail;
	memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
	t->name[IFNAMSIZ - 1] = '\0';
	ifreq_name(&ifr, t->name);
	err = ifreq_ioctl(SIOCGIFINDEX, &ifr);
	if (err) {
		errno = -err;
		goto fail;
	}
	t->ifindex = ifr.ifr_ifindex;
	if (mtu && (err = wg_tun_set_mtu(t->name, mtu)) != 0) {
		errno = -err;
		goto fail;
	}
	return 0;
fail:
	err = -errno;
	wg_tun_close(t);
	return err;
}

void wg_tun_close(struct wg_tun *t)
{
	/* Closing the last fd of a non-persistent TUN device deletes the interface. */
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

int wg_tun_read_batch(struct wg_tun *t, uint8_t *const bufs[], size_t bufcap, size_t lens[], int n)
{
	int count = 0;

	while (count < n) {
		ssize_t r = read(t->fd, bufs[count], bufcap);

		if (r > 0) {
			lens[count++] = (size_t)r;
			continue;
		}
		if (r == 0)     /* not expected from a TUN device; treat like "nothing pending" */
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		/* Report a dead device even after a partial batch: the packets read are still valid, and
		 * the next call (the fd stays readable with an error) reports the failure. */
		if (count)
			break;
		return -errno;
	}
	return count;
}

int wg_tun_write(struct wg_tun *t, const uint8_t *packet, size_t len)
{
	for (;;) {
		ssize_t w = write(t->fd, packet, len);

		if (w >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

bool wg_tun_attached(const struct wg_tun *t)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	/* TUNGETIFF fails with EBADFD once the interface has been unregistered. */
	return t->fd >= 0 && ioctl(t->fd, TUNGETIFF, &ifr) == 0;
}
