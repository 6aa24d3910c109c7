/*
 * launcher_spawn.c
 *		Starting sync commands (fork/exec, no shell), signalling their process
 *		groups and collecting their exit statuses.
 */
#include "postgres.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/latch.h"

#include "launcher.h"

extern char **environ;

/* Set when a child exited; the loop then reaps. */
volatile sig_atomic_t launcher_child_exited = false;

/* SIGCHLD: only note it and wake the loop (async-signal-safe). */
static void
launcher_sigchld(SIGNAL_ARGS)
{
	int			save_errno = errno;

	launcher_child_exited = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Install the SIGCHLD handler of the launcher. */
void
launcher_install_sigchld(void)
{
	pqsignal(SIGCHLD, launcher_sigchld);
}

/* Write all of buf to fd from the child; nothing else is safe there. */
static void
child_write(int fd, const void *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf = (const char *) buf + n;
		len -= n;
	}
}

/* Report a failed step to the parent through the exec pipe, then exit. */
static void
child_fail(int report_fd, const char *step)
{
	int			err = errno;
	char		msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", step, strerror(err));
	child_write(report_fd, msg, strlen(msg));
	_exit(127);
}

/*
 * The child between fork and exec: own process group, die with the
 * launcher, default signals, only the pipes open, the clean environment.
 * Must not return, must not touch PostgreSQL state (no palloc, no elog).
 */
static void
child_exec(const SpawnRequest *req, pid_t launcher_pid, int out_w, int err_w, int report_w)
{
	struct sigaction sa;
	sigset_t	empty;
	int			devnull;

	setpgid(0, 0);
	/* dies with the launcher; a launcher that died before this is detected below */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != launcher_pid)
		_exit(127);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);

	/* move the report pipe out of the way of 0..3, then lay out 0,1,2,3 */
	report_w = fcntl(report_w, F_DUPFD_CLOEXEC, 64);
	devnull = open("/dev/null", O_RDONLY);
	if (report_w < 0 || devnull < 0 ||
		dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0 ||
		dup3(report_w, 3, O_CLOEXEC) < 0)
		child_fail(report_w, "could not set up the command's file descriptors");
	report_w = 3;
	close_range(4, ~0U, 0);

	if (req->working_directory && chdir(req->working_directory) != 0)
		child_fail(report_w, "could not change to the working directory");

	/* execvp searches the PATH of environ, so install ours first */
	environ = req->envp;
	execvp(req->argv[0], req->argv);
	{
		char		msg[512];
		int			err = errno;

		snprintf(msg, sizeof(msg), "could not execute \"%s\": %s", req->argv[0], strerror(err));
		child_write(report_w, msg, strlen(msg));
	}
	_exit(127);
}

/* Read the exec report: empty when exec succeeded (the pipe closed on exec). */
static char *
read_exec_report(int fd)
{
	char		buf[600];
	Size		len = 0;

	for (;;)
	{
		ssize_t		n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	return len > 0 ? pstrdup(buf) : NULL;
}

/* Close both ends of the pipes made so far. */
static void
close_pipes(int fds[3][2])
{
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (fds[i][j] >= 0)
				close(fds[i][j]);
}

/*
 * Fork/exec the command.  Returns its pid (also its process group) with
 * non-blocking stdout/stderr read ends, or -1 with *error set (the process,
 * if any, is reaped).
 */
pid_t
launcher_spawn(const SpawnRequest *req, int *out_fd, int *err_fd, char **error)
{
	int			fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	sigset_t	all,
				saved;
	pid_t		launcher_pid = getpid();
	pid_t		pid;
	int			status;

	*error = NULL;
	for (int i = 0; i < 3; i++)
		if (pipe2(fds[i], O_CLOEXEC) != 0)
		{
			*error = psprintf("could not create a pipe: %m");
			close_pipes(fds);
			return -1;
		}

	/* block signals so that no handler of ours runs in the child before exec */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0)
		child_exec(req, launcher_pid, fds[0][1], fds[1][1], fds[2][1]);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0)
	{
		*error = psprintf("could not fork: %m");
		close_pipes(fds);
		return -1;
	}
	/* also here, so signals sent right after fork reach the whole group */
	setpgid(pid, pid);

	close(fds[0][1]);
	close(fds[1][1]);
	close(fds[2][1]);
	*error = read_exec_report(fds[2][0]);
	close(fds[2][0]);
	if (*error)
	{
		close(fds[0][0]);
		close(fds[1][0]);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	fcntl(fds[0][0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1][0], F_SETFL, O_NONBLOCK);
	*out_fd = fds[0][0];
	*err_fd = fds[1][0];
	return pid;
}

/* Signal a command's whole process group (ESRCH when gone is fine). */
void
launcher_signal_group(pid_t pgid, int sig)
{
	if (pgid > 0)
		kill(-pgid, sig);
}

/* Collect the child's exit status without waiting; true when it exited. */
bool
launcher_reap(pid_t pid, int *wait_status)
{
	pid_t		r;

	do
		r = waitpid(pid, wait_status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == ECHILD)
	{
		/* cannot happen unless someone else reaped it; treat as lost */
		*wait_status = W_EXITCODE(255, 0);
		return true;
	}
	return r == pid;
}

/*
 * Kill a child's whole process group and wait for the child itself (it
 * cannot outlive SIGKILL), so that it leaves no zombie behind.
 */
void
launcher_kill_and_reap(pid_t pid)
{
	int			status;

	launcher_signal_group(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* "exited with code 3" / "terminated by signal 9 (Killed)"; sets code or signal. */
char *
launcher_describe_exit(int wait_status, int *exit_code, int *exit_signal)
{
	*exit_code = -1;
	*exit_signal = 0;
	if (WIFEXITED(wait_status))
	{
		*exit_code = WEXITSTATUS(wait_status);
		return psprintf("exited with code %d", *exit_code);
	}
	if (WIFSIGNALED(wait_status))
	{
		*exit_signal = WTERMSIG(wait_status);
		return psprintf("terminated by signal %d (%s)", *exit_signal,
						pg_strsignal(*exit_signal));
	}
	return psprintf("ended with wait status %d", wait_status);
}

/* Whether process pid belongs to group pgid and carries CRM_DASHBOARD_SYNC_ID=id. */
static bool
is_orphan_of_run(const char *pid, pid_t pgid, int64 id)
{
	char		path[64];
	char		buf[8192];
	char		want[64];
	FILE	   *f;
	int			fd;
	ssize_t		n;
	int			group = -1;
	char	   *close_paren;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[Max(n, 0)] = '\0';
	/* fields after the command name, which may contain spaces: state ppid pgrp */
	close_paren = strrchr(buf, ')');
	if (!close_paren || sscanf(close_paren + 1, " %*c %*d %d", &group) != 1 || group != pgid)
		return false;

	snprintf(path, sizeof(path), "/proc/%s/environ", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	snprintf(want, sizeof(want), "CRM_DASHBOARD_SYNC_ID=" INT64_FORMAT, id);
	for (char *p = buf; p < buf + n; p += strlen(p) + 1)
		if (strcmp(p, want) == 0)
			return true;
	return false;
}

/*
 * Kill what is left of a lost run's process group (e.g. grandchildren after
 * an immediate shutdown, which PDEATHSIG does not reach).  Only processes
 * that are in that group and carry the run's CRM_DASHBOARD_SYNC_ID are
 * touched, so a reused process id is never mistaken for the run.
 */
int
launcher_kill_orphans(pid_t pgid, int64 id)
{
	DIR		   *dir = opendir("/proc");
	struct dirent *de;
	int			killed = 0;

	if (dir == NULL || pgid <= 1)
	{
		if (dir)
			closedir(dir);
		return 0;
	}
	while ((de = readdir(dir)) != NULL)
	{
		if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		if (is_orphan_of_run(de->d_name, pgid, id) && kill(atoi(de->d_name), SIGKILL) == 0)
			killed++;
	}
	closedir(dir);
	return killed;
}
