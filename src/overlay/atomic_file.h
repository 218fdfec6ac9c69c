/* Crash-safe whole-file writes and bounded reads.
 *
 * zl_file_write_atomic() gives the usual guarantee of temporary file + fsync + rename + directory fsync:
 * after a crash at any moment the target holds either its old content or the new one, complete, never
 * a mix or a truncated file. A crash can leave a temporary file behind (".<name>.tmp-<16 hex>" next to
 * the target); zl_file_sweep_temps() removes those. One writer per target at a time: callers that can
 * race (CLI and daemon) serialize above this layer. */
#ifndef ZL_ATOMIC_FILE_H
#define ZL_ATOMIC_FILE_H
#include <stddef.h>
#include <sys/types.h>

enum { ZL_FILE_READ_MAX = 16 * 1024 * 1024 }; /* default cap for zl_file_read_capped */

/* Replaces path with the len bytes of data, file mode exactly `mode` (umask does not apply).
 * Returns 0 or -errno. On error the target is untouched and the temporary file is removed, except
 * when only the final fsync of the directory failed (-errno returned, the new content is in place but
 * its durability is unknown). */
int zl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads the whole regular file path into a new NUL-terminated buffer (*out, caller frees; *len excludes
 * the NUL). Returns 0, -EFBIG when the file is larger than max bytes, -EINVAL when it is not a regular
 * file, or another -errno. Buffers that grow on the way are wiped before being freed, so a file holding
 * secrets leaves no copies behind except *out (wipe it before freeing). */
int zl_file_read_capped(const char *path, size_t max, char **out, size_t *len);

/* Creates dir and its missing parents with mode (exactly; umask does not apply to what we create).
 * Existing directories are left as they are. Returns 0 or -errno (-ENOTDIR if a component is a file). */
int zl_dir_create(const char *dir, mode_t mode);

/* Removes leftover temporary files of zl_file_write_atomic(path) (from a crash). Only call it while no
 * write to path can be in progress. Returns how many were removed, or -errno. */
int zl_file_sweep_temps(const char *path);

/* Test hook, never set in production: when not NULL it is called before each step and a negative errno
 * it returns makes that step fail as if the system call had failed. Not thread-safe. */
enum zl_atomic_step {
	ZL_ATOMIC_STEP_WRITE,
	ZL_ATOMIC_STEP_FSYNC,
	ZL_ATOMIC_STEP_RENAME,
	ZL_ATOMIC_STEP_DIRSYNC,
};
extern int (*zl_atomic_fault_hook)(enum zl_atomic_step step);
#endif
