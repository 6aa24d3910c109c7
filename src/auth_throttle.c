/*
 * auth_throttle.c
 *		Slow down password guessing against crm_api.login.
 *
 * After crm_dashboard.login_max_failures failed logins of one user name
 * within a minute, logins of that name are refused for
 * crm_dashboard.login_lockout seconds without looking at the password.
 * Keyed by user name rather than client address: the HTTP workers see only
 * their own peers, and SQL callers have none.  The lockout is short, so an
 * attacker can delay a user's login but not lock them out for long.
 *
 * The counters live in shared memory because a failed login's transaction
 * rolls back: a table would forget every failure.  Without preloading there
 * is no shared memory and no throttling.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "crm_dashboard.h"

#define THROTTLE_SLOTS 256
#define THROTTLE_WINDOW_MS (60 * 1000)

/* Recent failures of one user name (identified by a hash of it). */
typedef struct ThrottleSlot
{
	uint32		name_hash;
	int			failures;
	TimestampTz window_start;	/* first failure counted */
	TimestampTz locked_until;
} ThrottleSlot;

typedef struct ThrottleShared
{
	slock_t		mutex;
	ThrottleSlot slots[THROTTLE_SLOTS];
} ThrottleShared;

static ThrottleShared *throttle = NULL;
static int	login_max_failures = 5;
static int	login_lockout = 30;

/* Initialise the zeroed slots. */
static void
throttle_shmem_init(void *area)
{
	SpinLockInit(&((ThrottleShared *) area)->mutex);
}

/* Define the settings; with preloading, also the shared memory. */
void
LoginThrottleInit(void)
{
	DefineCustomIntVariable("crm_dashboard.login_max_failures",
							"Failed logins of one user name within a minute before logins are refused for a while.",
							"0 turns throttling off.  Needs shared_preload_libraries.",
							&login_max_failures, 5, 0, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.login_lockout",
							"How long logins of a user name are refused after too many failures.",
							NULL,
							&login_lockout, 30, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	crm_shmem_register("crm_dashboard login throttle", sizeof(ThrottleShared), 0,
					   (void **) &throttle, throttle_shmem_init);
}

/*
 * The slot of a name hash: its own, else a free or expired one, else the
 * one whose window started first.  Caller holds the mutex.
 */
static ThrottleSlot *
slot_for(uint32 name_hash, TimestampTz now)
{
	ThrottleSlot *victim = &throttle->slots[0];

	for (int i = 0; i < THROTTLE_SLOTS; i++)
	{
		ThrottleSlot *s = &throttle->slots[i];

		if (s->failures > 0 && s->name_hash == name_hash)
			return s;
		if (victim->failures > 0 &&
			(s->failures == 0 ||
			 (s->locked_until < now && s->window_start < victim->window_start)))
			victim = s;
	}
	memset(victim, 0, sizeof(ThrottleSlot));
	victim->name_hash = name_hash;
	return victim;
}

static uint32
name_hash(const char *username)
{
	return hash_bytes((const unsigned char *) username, strlen(username));
}

/* Refuse the login (SQLSTATE PT429, HTTP 429) while the name is locked out. */
void
login_throttle_check(const char *username)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz locked_until = 0;
	uint32		hash = name_hash(username);

	if (throttle == NULL || login_max_failures == 0)
		return;
	SpinLockAcquire(&throttle->mutex);
	for (int i = 0; i < THROTTLE_SLOTS; i++)
		if (throttle->slots[i].failures > 0 && throttle->slots[i].name_hash == hash)
			locked_until = throttle->slots[i].locked_until;
	SpinLockRelease(&throttle->mutex);

	if (locked_until > now)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE('P', 'T', '4', '2', '9')),
				 errmsg("too many failed logins for this user name"),
				 errdetail("Logins of this name are refused for %ld more seconds.",
						   (long) ((locked_until - now) / USECS_PER_SEC) + 1),
				 errhint("Wait, then try again with the right password.")));
}

/* Count a failed login, or forget the failures after a successful one. */
void
login_throttle_record(const char *username, bool success)
{
	TimestampTz now = GetCurrentTimestamp();
	ThrottleSlot *s;

	if (throttle == NULL || login_max_failures == 0)
		return;
	SpinLockAcquire(&throttle->mutex);
	s = slot_for(name_hash(username), now);
	if (success)
		memset(s, 0, sizeof(ThrottleSlot));
	else
	{
		if (s->failures == 0 || now - s->window_start > THROTTLE_WINDOW_MS * INT64CONST(1000))
		{
			s->failures = 0;
			s->window_start = now;
		}
		if (++s->failures >= login_max_failures)
			s->locked_until = now + (TimestampTz) login_lockout * USECS_PER_SEC;
	}
	SpinLockRelease(&throttle->mutex);
}
