/*
 * launcher_proc.h
 *		Reading processes from /proc: parent, process group, state and the
 *		environment they were started with.
 *
 * Plain C only (no PostgreSQL headers): the run supervisor
 * (launcher_child.c) uses it in a forked child, where nothing of
 * PostgreSQL may run, and the launcher's sweeps (launcher_reap.c) use it
 * too.
 */
#ifndef CRM_DASHBOARD_LAUNCHER_PROC_H
#define CRM_DASHBOARD_LAUNCHER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What /proc/PID/stat says about a process. */
typedef struct ProcInfo
{
	pid_t		pid;
	pid_t		ppid;
	pid_t		pgrp;
	char		state;			/* 'R', 'S', ..., 'Z' for a zombie */
} ProcInfo;

/* Called for each process; return false to stop the walk. */
typedef bool (*ProcVisitor) (const ProcInfo *info, void *arg);

extern bool proc_read_info(pid_t pid, ProcInfo *info);
extern bool proc_foreach(ProcVisitor visit, void *arg);
extern char *proc_read_environ(pid_t pid, size_t *len);
extern const char *proc_environ_lookup(const char *env, size_t len, const char *name);

#endif							/* CRM_DASHBOARD_LAUNCHER_PROC_H */
