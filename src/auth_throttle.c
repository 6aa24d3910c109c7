/*
 * auth_throttle.c
 *		Slow down password guessing against crm_api.login.
 *
 * Failures are counted twice: per user name and client address, and per
 * client address.  After crm_dashboard.login_max_failures failures of one
 * name from one address within a minute, that name is refused from that
 * address for crm_dashboard.login_lockout seconds; after
 * crm_dashboard.login_max_address_failures failures from one address under
 * any names, the address is refused altogether for as long.  So:
 *  - guessing one name from one address is slowed to a few tries a minute;
 *  - rotating names does not help, the address counter catches it;
 *  - a lockout never blocks the right password from another address, so
 *    nobody can keep the owner out by failing logins in their name;
 *  - failures under other names cannot push a name's counter out of the
 *    table: a name's entry is reused only once it expired, or, when the
 *    table is full, for an address counter (which bounds every guess from
 *    that address anyway) and only if it is not locked.
 *
 * Every failure and every lockout writes a LOG line with the user name and
 * address (never the password), as PostgreSQL logs its own authentication
 * failures.  The counters live in shared memory because a failed login's
 * transaction rolls back; without preloading there is none, and no limit.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "auth.h"
#include "crm_dashboard.h"

#define THROTTLE_SLOTS 4096
#define THROTTLE_WINDOW_MS (60 * 1000)
#define THROTTLE_NAME_IN_LOG 64		/* bytes of a user name shown in the log */

/* What a slot counts. */
typedef enum ThrottleKind
{
	THROTTLE_FREE = 0,
	THROTTLE_NAME_AT_ADDRESS,	/* one user name from one address */
	THROTTLE_ADDRESS			/* one address, any names */
} ThrottleKind;

/* Recent failures of one key. */
typedef struct ThrottleSlot
{
	ThrottleKind kind;
	uint32		key_hash;
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
static int	login_max_address_failures = 20;
static int	login_lockout = 30;

/* Initialise the zeroed slots. */
static void
throttle_shmem_init(void *area)
{
	SpinLockInit(&((ThrottleShared *) area)->mutex);
}

/* Define the settings; with preloading, also the shared memory. */
void
AuthThrottleInit(void)
{
	DefineCustomIntVariable("crm_dashboard.login_max_failures",
							"Failed logins of one user name from one client address within a minute "
							"before that name is refused from that address for a while.",
							"0 turns throttling off.  Needs shared_preload_libraries.",
							&login_max_failures, 5, 0, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.login_max_address_failures",
							"Failed logins from one client address, under any names, within a minute "
							"before that address is refused for a while.",
							"0 turns the per-address limit off.",
							&login_max_address_failures, 20, 0, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("crm_dashboard.login_lockout",
							"How long logins are refused after too many failures.",
							NULL,
							&login_lockout, 30, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	crm_shmem_register("crm_dashboard login throttle", sizeof(ThrottleShared), 0,
					   (void **) &throttle, throttle_shmem_init);
}

/* The hash of a user name at an address, or of an address alone (name NULL). */
static uint32
key_hash(const char *name, const char *address)
{
	uint32		h = hash_bytes((const unsigned char *) address, strlen(address));

	if (name == NULL)
		return h;
	return hash_combine(h, hash_bytes((const unsigned char *) name, strlen(name)));
}

/* Whether a slot's counting window is over and it is not locked. */
static bool
slot_expired(const ThrottleSlot *s, TimestampTz now)
{
	return s->kind == THROTTLE_FREE ||
		(s->locked_until <= now &&
		 now - s->window_start > THROTTLE_WINDOW_MS * INT64CONST(1000));
}

/* The slot of a key, or NULL.  Caller holds the mutex. */
static ThrottleSlot *
find_slot(ThrottleKind kind, uint32 hash)
{
	for (int i = 0; i < THROTTLE_SLOTS; i++)
		if (throttle->slots[i].kind == kind && throttle->slots[i].key_hash == hash)
			return &throttle->slots[i];
	return NULL;
}

/*
 * A slot to reuse for a new key: an expired one; else, for an address (the
 * counter that bounds all guessing from it), the unlocked name slot whose
 * window started first.  NULL when none: a name's counter is never pushed
 * out by other names' failures.  Caller holds the mutex.
 */
static ThrottleSlot *
reusable_slot(ThrottleKind kind, TimestampTz now)
{
	ThrottleSlot *oldest = NULL;

	for (int i = 0; i < THROTTLE_SLOTS; i++)
	{
		ThrottleSlot *s = &throttle->slots[i];

		if (slot_expired(s, now))
			return s;
		if (s->kind == THROTTLE_NAME_AT_ADDRESS && s->locked_until <= now &&
			(oldest == NULL || s->window_start < oldest->window_start))
			oldest = s;
	}
	return kind == THROTTLE_ADDRESS ? oldest : NULL;
}

/* The slot of a key, made when it has none (NULL when the table is full). */
static ThrottleSlot *
slot_for(ThrottleKind kind, uint32 hash, TimestampTz now)
{
	ThrottleSlot *s = find_slot(kind, hash);

	if (s != NULL)
		return s;
	s = reusable_slot(kind, now);
	if (s != NULL)
	{
		memset(s, 0, sizeof(ThrottleSlot));
		s->kind = kind;
		s->key_hash = hash;
	}
	return s;
}

/* When a key's lockout ends, or 0.  Caller holds the mutex. */
static TimestampTz
locked_until(ThrottleKind kind, uint32 hash)
{
	ThrottleSlot *s = find_slot(kind, hash);

	return s ? s->locked_until : 0;
}

/* A user name fit for one line of the log: printable ASCII, bounded. */
static char *
loggable_name(const char *username)
{
	char	   *out = pnstrdup(username, THROTTLE_NAME_IN_LOG);

	for (char *c = out; *c; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
			*c = '?';
	return out;
}

/*
 * Refuse the login (SQLSTATE PT429, HTTP 429) while this name is locked out
 * at this address, or the address itself is.
 */
void
auth_throttle_check(const char *username, const char *address)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until;

	if (throttle == NULL || login_max_failures == 0)
		return;
	SpinLockAcquire(&throttle->mutex);
	until = Max(locked_until(THROTTLE_NAME_AT_ADDRESS, key_hash(username, address)),
				locked_until(THROTTLE_ADDRESS, key_hash(NULL, address)));
	SpinLockRelease(&throttle->mutex);
	if (until <= now)
		return;
	ereport(LOG,
			(errmsg("crm_dashboard: login of dashboard user \"%s\" from %s refused: too many failed logins",
					loggable_name(username), address)));
	ereport(ERROR,
			(errcode(MAKE_SQLSTATE('P', 'T', '4', '2', '9')),
			 errmsg("too many failed logins"),
			 errdetail("Logins are refused for %ld more seconds.",
					   (long) ((until - now) / USECS_PER_SEC) + 1),
			 errhint("Wait, then try again with the right password.")));
}

/*
 * Count one failure in a slot; returns true when this failure locks it.
 * Caller holds the mutex.
 */
static bool
count_failure(ThrottleSlot *s, int limit, TimestampTz now)
{
	if (s == NULL || limit == 0)
		return false;
	if (s->failures == 0 || now - s->window_start > THROTTLE_WINDOW_MS * INT64CONST(1000))
	{
		s->failures = 0;
		s->window_start = now;
	}
	if (++s->failures < limit || s->locked_until > now)
		return false;
	s->locked_until = now + (TimestampTz) login_lockout * USECS_PER_SEC;
	return true;
}

/*
 * Count a failed login (and log it), or forget the failures of this name at
 * this address after a successful one.  The address counter is not reset by
 * a success: one known account must not buy unlimited guesses at others.
 */
void
auth_throttle_record(const char *username, const char *address, bool success)
{
	TimestampTz now = GetCurrentTimestamp();
	uint32		name_hash = key_hash(username, address);
	bool		name_locked = false;
	bool		address_locked = false;

	if (!success)
		ereport(LOG,
				(errmsg("crm_dashboard: failed login of dashboard user \"%s\" from %s",
						loggable_name(username), address)));
	if (throttle == NULL || login_max_failures == 0)
		return;
	SpinLockAcquire(&throttle->mutex);
	if (success)
	{
		ThrottleSlot *s = find_slot(THROTTLE_NAME_AT_ADDRESS, name_hash);

		if (s != NULL)
			memset(s, 0, sizeof(ThrottleSlot));
	}
	else
	{
		name_locked = count_failure(slot_for(THROTTLE_NAME_AT_ADDRESS, name_hash, now),
									login_max_failures, now);
		address_locked = count_failure(slot_for(THROTTLE_ADDRESS, key_hash(NULL, address), now),
									   login_max_address_failures, now);
	}
	SpinLockRelease(&throttle->mutex);
	if (name_locked)
		ereport(LOG,
				(errmsg("crm_dashboard: logins of dashboard user \"%s\" from %s locked for %d s after %d failures",
						loggable_name(username), address, login_lockout, login_max_failures)));
	if (address_locked)
		ereport(LOG,
				(errmsg("crm_dashboard: logins from %s locked for %d s after %d failures",
						address, login_lockout, login_max_address_failures)));
}
