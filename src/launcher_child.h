/*
 * launcher_child.h
 *		What runs in the processes the launcher forks for a run: the run's
 *		supervisor, and the command it executes.
 *
 * Plain C only (no PostgreSQL headers), so that nothing of PostgreSQL can be
 * called between fork and exec, or in the supervisor, which never execs.
 */
#ifndef CRM_DASHBOARD_LAUNCHER_CHILD_H
#define CRM_DASHBOARD_LAUNCHER_CHILD_H

#include <sys/types.h>

/* What to execute. */
typedef struct SpawnRequest
{
	char	  **argv;			/* NULL-terminated */
	char	  **envp;			/* NULL-terminated, complete environment */
	const char *working_directory;	/* NULL: the data directory */
} SpawnRequest;

/*
 * The report pipe carries the command's pid (a pid_t, written by the command
 * itself right after fork), then nothing when exec succeeded (the pipe
 * closes on exec), or a message saying what failed.  A pid of 0 means the
 * supervisor could not even fork the command.
 */

extern _Noreturn void launcher_child_main(const SpawnRequest *req, pid_t launcher_pid,
										  int out_w, int err_w, int report_w);

#endif							/* CRM_DASHBOARD_LAUNCHER_CHILD_H */
