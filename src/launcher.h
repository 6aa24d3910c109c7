/*
 * launcher.h
 *		The sync launcher: a background worker that fork/execs the sync
 *		commands queued in crm_dashboard.sync_history and supervises them.
 *
 * Modules:
 *	launcher.c			GUCs, shared state, the worker's main loop
 *	launcher_spawn.c	starting a run's supervisor, pipes, signals to process groups
 *	launcher_child.c	the run's supervisor and the command's exec (plain C)
 *	launcher_reap.c		reaping children, sweeping what is left of ended runs
 *	launcher_proc.c		reading /proc (plain C)
 *	launcher_runs.c		SQL state transitions of runs (claim, progress, finish)
 *	launcher_output.c	output ring buffer, lines of output, what they mean
 *	launcher_progress.c	parsing a JSON-lines progress event (plain C)
 *	launcher_mask.c		masking a run's secrets in its output (plain C)
 *	launcher.sql		the claim step (what runs next: pools, priorities, pauses,
 *						retry times), retry policies, pauses, what follows a failure
 *	sync_request.c		start_sync/stop_sync/command_preview: validation, argv
 *
 * Retries, pauses and not-before times are rows, never timers in memory:
 * a launcher that restarts finds them as data.
 */
#ifndef CRM_DASHBOARD_LAUNCHER_H
#define CRM_DASHBOARD_LAUNCHER_H

#include "postgres.h"

#include <sys/types.h>

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

#include "launcher_child.h"
#include "launcher_mask.h"

/* GUCs (launcher.c) */
extern char *crm_launcher_database;
extern int	crm_max_running_syncs;
extern int	crm_stop_grace;
extern int	crm_log_limit;
extern char *crm_sync_user;
extern int	crm_priority_aging;

/* Kept error events per run (performance_metrics -> 'errors'). */
#define LAUNCHER_KEPT_ERRORS 20
/* Longest stdout line parsed as JSON; longer lines are log text, kept in pieces. */
#define LAUNCHER_LINE_MAX (64 * 1024)
/* Bytes of recent stderr kept for the error message of a failed run. */
#define LAUNCHER_STDERR_TAIL 2048
/* How often a run's counters reach the table at most, and the heartbeat. */
#define LAUNCHER_FLUSH_MS 250
#define LAUNCHER_HEARTBEAT_MS 2000
/* How often retention looks at its policy, and the pause between batches while it is behind. */
#define LAUNCHER_RETENTION_MS 10000
#define LAUNCHER_RETENTION_BEHIND_MS 200
/* How often the models' freshness is recorded (crm_dashboard.note_freshness). */
#define LAUNCHER_FRESHNESS_MS 30000

/* The fixed-size output ring of one run: memory stays flat whatever the output. */
typedef struct OutputRing
{
	char	   *buf;
	Size		cap;
	Size		start;			/* offset of the oldest kept byte */
	Size		len;			/* kept bytes */
	uint64		total;			/* bytes ever appended */
	uint64		lines;			/* newlines ever appended */
} OutputRing;

/* One output stream of a child (stdout or stderr). */
typedef struct RunStream
{
	int			fd;				/* -1 once EOF was seen */
	bool		is_stdout;
	char	   *line;			/* partial line carried between reads */
	Size		line_len;
	Size		line_cap;		/* LAUNCHER_LINE_MAX + the longest secret */
	bool		line_overlong;	/* current line exceeded LAUNCHER_LINE_MAX */
} RunStream;

typedef enum RunState
{
	RUN_RUNNING,				/* child alive */
	RUN_STOPPING,				/* SIGTERM sent, SIGKILL at kill_at */
	RUN_EXITED					/* reaped; waiting for pipes to drain */
} RunState;

/* Why a run is being stopped. */
typedef enum StopReason
{
	STOP_NONE,
	STOP_REQUESTED,
	STOP_TIMEOUT,
	STOP_STALLED				/* no output for the stall timeout */
} StopReason;

/*
 * A supervised run: our child is the run's supervisor, whose child is the
 * command (launcher_child.c).
 */
typedef struct Run
{
	int64		id;
	int64		parent_id;		/* 0 when none */
	MemoryContext cxt;			/* everything the run owns; deleted at finish */
	pid_t		pid;			/* the command's, also its process group id */
	pid_t		supervisor;		/* the run's supervisor, our child */
	RunState	state;
	StopReason	stop_reason;
	int			wait_status;	/* from waitpid, valid in RUN_EXITED: the command's */
	RunStream	out;
	RunStream	err;
	SecretSet	secrets;		/* masked in everything kept (values in cxt) */
	OutputRing	log;
	char		stderr_tail[LAUNCHER_STDERR_TAIL];
	Size		stderr_tail_len;
	char	   *last_error;		/* message of the last error event */
	char	   *rate_message;	/* message of the last rate_limited event */
	bool		permanent;		/* an error event said "retryable": false */
	bool		rate_limited;	/* a rate_limited event gave a retry_after */
	TimestampTz rate_wait_until;	/* the command waits for the CRM until then; 0: no */
	TimestampTz last_output_at; /* last bytes read from the command: the stall clock */
	int			stall_timeout_s;	/* 0: never stalled */

	/* counters from progress events */
	int64		processed;
	int64		created;
	int64		updated;
	int64		failed;
	int64		total;			/* -1 when unknown */
	int64		error_count;
	List	   *errors;			/* last LAUNCHER_KEPT_ERRORS cJSON objects, as char * */
	char	   *summary;		/* JSON text of the summary event, if any */

	TimestampTz started_at;
	TimestampTz deadline;		/* timeout; 0 when none */
	int			timeout_s;
	TimestampTz kill_at;		/* SIGKILL time while stopping; 0 when none */
	TimestampTz flushed_at;		/* last counters update */
	TimestampTz log_flushed_at;
	bool		launch_pending; /* marked running in the open transaction */
	bool		finish_pending; /* outcome written in the open transaction */
	bool		dirty;			/* counters changed since the last flush */
	bool		log_dirty;
	/* the log store (launcher_log.c): what of the output is written there */
	uint64		log_written;	/* bytes of the output written as chunks */
	int32		log_seq;		/* the last chunk written; 0: none */
	uint64	   *log_starts;		/* first byte of each kept chunk, oldest first */
	int			log_kept;		/* kept chunks: seq log_seq - log_kept + 1 on */
	int			log_starts_cap;
	uint64		peak_read;		/* largest single read, bytes */
} Run;

/* launcher.c */
extern void LauncherInit(void);
extern PGDLLEXPORT void crm_launcher_main(Datum arg);
extern bool launcher_available(Oid *database);
extern void launcher_wake_at_commit(void);

/* What identifies the processes of one run, for launcher_sweep. */
typedef struct RunProcesses
{
	int64		id;				/* CRM_DASHBOARD_SYNC_ID */
	pid_t		pgid;			/* the command's process group; 0 when unknown */
	pid_t		supervisor;		/* 0 when gone or unknown */
	bool		verify_group;	/* trust pgid only if a member carries id (lost runs) */
} RunProcesses;

/* launcher_spawn.c */
extern pid_t launcher_spawn(int64 run_id, const SpawnRequest *req, int *out_fd, int *err_fd,
							pid_t *supervisor, char **error, bool *transient);
extern void launcher_signal_group(pid_t pgid, int sig);
extern void launcher_install_sigchld(void);
extern char *launcher_describe_exit(int wait_status, int *exit_code, int *exit_signal);

/* launcher_log.c */
extern void runs_write_log(Run *run);

/* launcher_reap.c */
extern void launcher_become_subreaper(void);
extern pid_t launcher_reap_any(int *wait_status);
extern const char *launcher_cluster_tag(void);
extern int	launcher_sweep(List *ended, List *live);

/* launcher_output.c */
extern void output_ring_init(OutputRing *ring, Size cap);
extern void output_ring_append(OutputRing *ring, const char *data, Size len);
extern void output_ring_copy(const OutputRing *ring, uint64 from, Size n, char *dst);
extern void run_streams_init(Run *run, int out_fd, int err_fd);
extern bool run_read_stream(Run *run, RunStream *stream);
extern void run_close_streams(Run *run);
extern char *run_error_lines(const Run *run, int max_lines);
extern char *run_metrics_json(const Run *run, TimestampTz now);
extern char *text_sanitize(const char *data, Size len);

/* launcher_runs.c */
extern bool runs_extension_ready(Oid *extension);
extern List *runs_recover(void);
extern List *runs_claim(int slots);
extern TimestampTz runs_next_due(void);
extern void runs_note_freshness(void);
extern Run *runs_launch(int64 id, MemoryContext parent);
extern void runs_mark_running(Run *run);
extern void runs_flush(Run *run, TimestampTz now, bool with_log);
extern void runs_finish(Run *run);
extern List *runs_stop_requested(List *running_ids);
extern void runs_finish_parents(void);


#endif							/* CRM_DASHBOARD_LAUNCHER_H */
