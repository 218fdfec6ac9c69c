/* Environment switches: see env.h. */
#include "wg/io/env.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool wg_env_switch(const char *name, bool default_on)
{
	const char *v = getenv(name);

	if (!v || !*v)
		return default_on;
	return strcmp(v, "0") && strcasecmp(v, "off") && strcasecmp(v, "no") && strcasecmp(v, "false");
}
