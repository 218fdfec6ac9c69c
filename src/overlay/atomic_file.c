/* Atomic, durable file replacement and bounded reads (see atomic_file.h).
 *
 * Order of a write: create a unique temporary file in the target's directory (same file system, so the
 * rename is atomic), write everything, fsync it (data and size reach the disk before the name does),
 * rename it over the target, fsync the directory (the rename itself reaches the disk). A crash before
 * the rename leaves the old target plus a stray temporary; after it, the new target. */
#include "overlay/atomic_file.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

enum { TMP_RANDOM_BYTES = 8, TMP_ATTEMPTS = 16, READ_INITIAL = 4096 };
static const char tmp_tag[] = ".tmp-";

int (*zl_atomic_fault_hook)(enum zl_atomic_step step);

static int fault(enum zl_atomic_step step)
{
	return zl_atomic_fault_hook ? zl_atomic_fault_hook(step) : 0;
}

/* Splits path into its directory ("." when there is none) and base name. */
static int split_path(const char *path, char dir[PATH_MAX], const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!*path)
		return -ENOENT;
	if (!slash) {
		strcpy(dir, ".");
		*base = path;
		return 0;
	}
	if (!slash[1])
		return -EISDIR;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	*base = slash + 1;
	return 0;
}

/* Creates "<dir>/.<base>.tmp-<16 hex>" with O_EXCL; retries on the (unlikely) name clash. */
static int create_temp(const char *dir, const char *base, mode_t mode, char tmp[PATH_MAX])
{
	for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
		uint8_t r[TMP_RANDOM_BYTES];
		int fd, n;

		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			return -EIO;
		n = snprintf(tmp, PATH_MAX, "%s/.%s%s%02x%02x%02x%02x%02x%02x%02x%02x", dir, base, tmp_tag,
			     r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
		if (n < 0 || n >= PATH_MAX)
			return -ENAMETOOLONG;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
		if (fd >= 0) {
			/* open() applied the umask; the caller asked for this exact mode. */
			if (fchmod(fd, mode) < 0) {
				int e = -errno;
				close(fd);
				unlink(tmp);
				return e;
			}
			return fd;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	int e = fault(ZL_ATOMIC_STEP_WRITE);

	if (e)
		return e;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sync_fd(int fd)
{
	int e = fault(ZL_ATOMIC_STEP_FSYNC);

	if (e)
		return e;
	return fsync(fd) < 0 ? -errno : 0;
}

static int sync_dir(const char *dir)
{
	int fd, e = fault(ZL_ATOMIC_STEP_DIRSYNC);

	if (e)
		return e;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	e = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return e;
}

static int rename_over(const char *tmp, const char *path)
{
	int e = fault(ZL_ATOMIC_STEP_RENAME);

	if (e)
		return e;
	return rename(tmp, path) < 0 ? -errno : 0;
}

int zl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *base;
	int fd, e;

	e = split_path(path, dir, &base);
	if (e)
		return e;
	fd = create_temp(dir, base, mode, tmp);
	if (fd < 0)
		return fd;
	e = write_all(fd, data, len);
	if (!e)
		e = sync_fd(fd);
	/* close() can report a deferred write error (NFS); it counts like any other. */
	if (close(fd) < 0 && !e)
		e = -errno;
	if (!e)
		e = rename_over(tmp, path);
	if (e) {
		unlink(tmp);
		return e;
	}
	return sync_dir(dir);
}

/* Moves the buffer to a bigger one, wiping the old copy (the file may hold secrets). */
static int grow(char **buf, size_t *cap, size_t len, size_t want)
{
	char *n = malloc(want);

	if (!n)
		return -ENOMEM;
	memcpy(n, *buf, len);
	explicit_bzero(*buf, *cap);
	free(*buf);
	*buf = n;
	*cap = want;
	return 0;
}

/* True when fd still has data: the file grew past the cap after fstat. */
static bool more_data(int fd)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n != 0;
}

static int read_fd(int fd, size_t max, size_t hint, char **out, size_t *out_len)
{
	size_t cap = (hint < max ? hint : max) + 1, len = 0;
	char *buf;
	int e = 0;

	if (cap < READ_INITIAL && max >= READ_INITIAL)
		cap = READ_INITIAL;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		if (len == cap - 1) {
			if (len >= max) {
				e = more_data(fd) ? -EFBIG : 0;
				break;
			}
			size_t want = len ? 2 * len : READ_INITIAL; /* len < max here, so want > len */
			e = grow(&buf, &cap, len, (want < max ? want : max) + 1);
			if (e)
				break;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? -errno : 0;
			break;
		}
		len += (size_t)n;
	}
	if (e) {
		explicit_bzero(buf, cap);
		free(buf);
		return e;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

int zl_file_read_capped(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		e = -errno;
	else if (!S_ISREG(st.st_mode))
		e = -EINVAL;
	else if ((uintmax_t)st.st_size > max)
		e = -EFBIG;
	else
		e = read_fd(fd, max, (size_t)st.st_size, out, len);
	close(fd);
	return e;
}

/* mkdir that treats an existing directory as success and sets the exact mode on what it creates. */
static int make_one(const char *p, mode_t mode)
{
	struct stat st;

	if (mkdir(p, mode) == 0)
		return chmod(p, mode) < 0 ? -errno : 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(p, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int zl_dir_create(const char *dir, mode_t mode)
{
	char p[PATH_MAX];
	size_t n = strlen(dir);
	int e;

	if (n == 0)
		return -ENOENT;
	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (p[i] != '/' || p[i - 1] == '/')
			continue;
		p[i] = '\0';
		e = make_one(p, mode);
		p[i] = '/';
		if (e)
			return e;
	}
	return make_one(p, mode);
}

static bool is_temp_of(const char *name, const char *base)
{
	size_t b = strlen(base), t = sizeof(tmp_tag) - 1;

	if (name[0] != '.' || strncmp(name + 1, base, b) || strncmp(name + 1 + b, tmp_tag, t))
		return false;
	name += 1 + b + t;
	if (strlen(name) != 2 * TMP_RANDOM_BYTES)
		return false;
	return strspn(name, "0123456789abcdef") == 2 * TMP_RANDOM_BYTES;
}

int zl_file_sweep_temps(const char *path)
{
	char dir[PATH_MAX];
	const char *base;
	struct dirent *d;
	DIR *dp;
	int e, removed = 0;

	e = split_path(path, dir, &base);
	if (e)
		return e;
	dp = opendir(dir);
	if (!dp)
		return -errno;
	while ((d = readdir(dp))) {
		if (is_temp_of(d->d_name, base) && unlinkat(dirfd(dp), d->d_name, 0) == 0)
			removed++;
	}
	closedir(dp);
	return removed;
}
