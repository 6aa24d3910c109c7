/*
 * announce.h
 *		Run changes, published at commit into a shared-memory ring that the
 *		HTTP workers read for Server-Sent Events (NOTIFY cannot reach a
 *		background worker).  Written by the sync_history trigger.
 */
#ifndef CRM_DASHBOARD_ANNOUNCE_H
#define CRM_DASHBOARD_ANNOUNCE_H

#include "postgres.h"

#define ANNOUNCE_PAYLOAD_MAX 1024	/* bytes of JSON per event, NUL included */

/* Request and attach the shared memory (called from _PG_init when preloaded). */
extern void AnnounceInit(void);

/* Whether the ring exists (the library was preloaded). */
extern bool announce_available(void);

/* The sequence number of the newest published event; 0 when none yet. */
extern uint64 announce_last_seq(void);

/*
 * Copy event seq's JSON into buf.  Returns false when seq is not published
 * yet or has already been overwritten (the reader then skips ahead).
 */
extern bool announce_get(uint64 seq, char *buf, Size buflen);

/*
 * The name of a ring event ("sync" for a run's change, else e.g. "alert")
 * copied into name when given; returns where its JSON starts.
 */
extern const char *announce_event_name(const char *payload, char *name, Size namelen);

/* Make every later publish set MyLatch (for HTTP workers; once per process). */
extern void announce_subscribe(void);

#endif							/* CRM_DASHBOARD_ANNOUNCE_H */
