/*
 * launcher_proc.c
 *		Reading processes from /proc (see launcher_proc.h).
 *
 * Plain C only, no PostgreSQL headers: this runs in the run supervisor too,
 * a forked child of the launcher where palloc and elog must not be used.
 * Every function is total: a process that vanishes while it is read, or
 * whose files we may not read, is simply "not there".
 */
#include "launcher_proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest environment read; exec refuses far smaller ones already. */
#define ENVIRON_MAX (16 * 1024 * 1024)

/* Read up to size - 1 bytes of a small file, NUL-terminated; -1 when it cannot be read. */
static ssize_t
read_small_file(const char *path, char *buf, size_t size)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t		len = 0;

	if (fd < 0)
		return -1;
	while (len < size - 1)
	{
		ssize_t		n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t) len;
}

/* Parent, process group and state of pid; false when it is gone or unreadable. */
bool
proc_read_info(pid_t pid, ProcInfo *info)
{
	char		path[64];
	char		buf[1024];
	char	   *close_paren;
	int			ppid,
				pgrp;
	char		state;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return false;
	/* "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL ||
		sscanf(close_paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
		return false;
	info->pid = pid;
	info->ppid = ppid;
	info->pgrp = pgrp;
	info->state = state;
	return true;
}

/* Whether a directory entry of /proc names a process. */
static bool
is_pid_name(const char *name)
{
	if (*name == '\0')
		return false;
	for (const char *p = name; *p; p++)
		if (!isdigit((unsigned char) *p))
			return false;
	return true;
}

/*
 * Call visit for every process that can be read, until it returns false.
 * Returns false when /proc itself cannot be read.
 */
bool
proc_foreach(ProcVisitor visit, void *arg)
{
	DIR		   *dir = opendir("/proc");
	struct dirent *de;

	if (dir == NULL)
		return false;
	while ((de = readdir(dir)) != NULL)
	{
		ProcInfo	info;

		if (!is_pid_name(de->d_name))
			continue;
		if (proc_read_info((pid_t) atol(de->d_name), &info) && !visit(&info, arg))
			break;
	}
	closedir(dir);
	return true;
}

/*
 * The environment pid was started with (NAME=value entries separated by
 * NUL bytes, with one more NUL at the end), malloc'd; NULL when it cannot
 * be read (gone, another user's, a kernel thread).  The caller frees it.
 */
char *
proc_read_environ(pid_t pid, size_t *len)
{
	char		path[64];
	size_t		cap = 8192;
	size_t		used = 0;
	char	   *buf;
	int			fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int) pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if ((buf = malloc(cap)) == NULL)
	{
		close(fd);
		return NULL;
	}
	for (;;)
	{
		ssize_t		n;

		if (used + 1 >= cap)
		{
			char	   *bigger = cap < ENVIRON_MAX ? realloc(buf, cap * 2) : NULL;

			if (bigger == NULL)
				break;			/* keep what was read: the entries we look for come early */
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += n;
	}
	close(fd);
	buf[used] = '\0';
	*len = used;
	return buf;
}

/* The value of variable name in an environment read by proc_read_environ, or NULL. */
const char *
proc_environ_lookup(const char *env, size_t len, const char *name)
{
	size_t		namelen = strlen(name);
	const char *end = env + len;

	for (const char *p = env; p < end; p += strlen(p) + 1)
		if (strncmp(p, name, namelen) == 0 && p[namelen] == '=')
			return p + namelen + 1;
	return NULL;
}
