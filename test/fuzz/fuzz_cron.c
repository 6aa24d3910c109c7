/*
 * fuzz_cron.c
 *		libFuzzer target for the cron expression checker (src/schedules_cron.c).
 *
 * Invariants: the checker never crashes or reads out of bounds on any input,
 * always terminates its reason, and accepts an expression exactly when it
 * accepts the same expression with blanks around it.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedules_cron.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *expr = malloc(size + 1);
	char	   *padded = malloc(size + 3);
	char		why[128];
	char		why2[128];
	bool		ok;

	memcpy(expr, data, size);
	expr[size] = '\0';
	memset(why, 'x', sizeof(why));
	ok = cron_check(expr, why, sizeof(why));
	assert(ok || memchr(why, '\0', sizeof(why)) != NULL);
	/* the reason names the field of a refused expression, never nothing */
	assert(ok || why[0] != '\0');

	/* blanks around an expression change nothing (under the length limit) */
	if (strlen(expr) + 2 <= CRON_MAX_LENGTH)
	{
		padded[0] = ' ';
		strcpy(padded + 1, expr);
		strcat(padded, "\t");
		assert(cron_check(padded, why2, sizeof(why2)) == ok);
	}
	free(expr);
	free(padded);
	return 0;
}
