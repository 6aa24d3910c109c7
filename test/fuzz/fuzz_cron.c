/*
 * fuzz_cron.c
 *		libFuzzer target for the cron expression checker and the next fire
 *		time of a schedule (src/schedules_cron.c).
 *
 * Invariants: the checker never crashes or reads out of bounds on any input,
 * always terminates its reason, and accepts an expression exactly when it
 * accepts the same expression with blanks around it.  cron_next answers only
 * for accepted expressions; its answer is a whole minute strictly after the
 * given time and within the horizon; the schedule fires then (asking from a
 * second earlier gives the same time) and not before (asking from any time
 * in between gives the same time); blanks around the expression change
 * nothing.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedules_cron.h"

/* Check cron_next's promises for one expression and start time. */
static void
check_next(const char *expr, const char *padded, bool accepted, int64_t after)
{
	int64_t		next;
	int64_t		again;

	if (!cron_next(expr, after, &next))
		return;
	assert(accepted);
	assert(next > after && next % 60 == 0);
	assert(next - after <= (int64_t) (CRON_HORIZON_DAYS + 32) * 86400);
	assert(cron_next(expr, next - 1, &again) && again == next);
	assert(cron_next(expr, after + (next - after) / 2, &again) && again == next);
	if (padded)
		assert(cron_next(padded, after, &again) && again == next);
}

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
	else
		padded[0] = '\0';

	/* a leap day, an ordinary Wednesday, a year's last minute, before 1970, the input's own */
	{
		int64_t		times[] = {1709164800, 1736935200, 1735689599, -86400 * 400 - 17, 0};
		uint64_t	h = 1469598103934665603u;

		for (size_t i = 0; i < size; i++)
			h = (h ^ data[i]) * 1099511628211u;
		times[4] = (int64_t) (h % 8000000000u) - 1000000000;
		for (int i = 0; i < 5; i++)
			check_next(expr, padded[0] ? padded : NULL, ok, times[i]);
	}
	free(expr);
	free(padded);
	return 0;
}
