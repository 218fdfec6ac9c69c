/* On/off switches read from the environment (ZL_WG_OFFLOAD, read by the TUN and the UDP side): one
 * spelling for all. */
#ifndef WG_IO_ENV_H
#define WG_IO_ENV_H
#include <stdbool.h>

/* Unset or empty: default_on. "0", "off", "no" or "false" (any case): off. Anything else: on. */
bool wg_env_switch(const char *name, bool default_on);
#endif
