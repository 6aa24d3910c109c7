/*
 * launcher_spawn.c
 *		Starting a run: its supervisor (which starts the command, see
 *		launcher_child.c), the pipes of its output, signals to the command's
 *		process group, and what its exit status means.
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/ps_status.h"

#include "launcher.h"

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

/*
 * Read the report pipe to its end (it closes when the command execs or
 * exits): the command's pid, then a message when its start failed.
 * Returns the pid, or 0 with *error set.
 */
static pid_t
read_exec_report(int fd, char **error)
{
	char		buf[sizeof(pid_t) + 600];
	Size		len = 0;
	pid_t		pid = 0;

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
	if (len >= sizeof(pid_t))
		memcpy(&pid, buf, sizeof(pid_t));
	if (len > sizeof(pid_t))
		*error = pstrdup(buf + sizeof(pid_t));
	else if (pid <= 0)
		*error = pstrdup("the run's supervisor ended before it started the command");
	return *error ? 0 : pid;
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
 * Start a run: fork its supervisor, which forks and execs the command.
 * Returns the command's pid (also its process group) with non-blocking
 * stdout/stderr read ends and the supervisor's pid, or -1 with *error set
 * (the supervisor, if any, is reaped: it exits as soon as the command did)
 * and *transient saying whether trying again may help: a pipe or fork that
 * failed may work later, a command that cannot be executed will not.
 */
pid_t
launcher_spawn(int64 run_id, const SpawnRequest *req, int *out_fd, int *err_fd,
			   pid_t *supervisor, char **error, bool *transient)
{
	char		title[64];
	int			fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	sigset_t	all,
				saved;
	pid_t		launcher_pid = getpid();
	pid_t		pid;
	pid_t		command;
	int			status;

	*error = NULL;
	*transient = true;
	snprintf(title, sizeof(title), "supervising run " INT64_FORMAT, run_id);
	for (int i = 0; i < 3; i++)
		if (pipe2(fds[i], O_CLOEXEC) != 0)
		{
			*error = psprintf("could not create a pipe: %m");
			close_pipes(fds);
			return -1;
		}

	/* block signals so that no handler of ours runs in the child */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0)
	{
		/* the one PostgreSQL call in the child: only its own title, for ps */
		set_ps_display(title);
		launcher_child_main(req, launcher_pid, fds[0][1], fds[1][1], fds[2][1]);
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0)
	{
		*error = psprintf("could not fork: %m");
		close_pipes(fds);
		return -1;
	}

	close(fds[0][1]);
	close(fds[1][1]);
	close(fds[2][1]);
	command = read_exec_report(fds[2][0], error);
	close(fds[2][0]);
	if (*error)
	{
		*transient = false;
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
	*supervisor = pid;
	return command;
}

/* Signal a command's whole process group (ESRCH when gone is fine). */
void
launcher_signal_group(pid_t pgid, int sig)
{
	if (pgid > 0)
		kill(-pgid, sig);
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
