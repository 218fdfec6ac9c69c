/* zl-overlay: the overlay's command-line tool (init-leader, join, status, peers, token, remove-peer,
 * leave). Everything lives in src/cli; see src/cli/cli.h. */
#include <stdio.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv, stdout, stderr);
}
