/*
 * launcher_child.c
 *		The processes of a run: its supervisor, and the command it executes.
 *
 * For each run the launcher forks a supervisor, which forks and execs the
 * command.  The supervisor is a child subreaper: whatever the command leaves
 * behind (a process in a new session, a double fork, one with its
 * environment cleared) is reparented to the supervisor when its parent
 * dies, so the supervisor holds the run's whole process tree without having
 * to find it.  When the command exits, when the launcher dies (even by
 * SIGKILL: the supervisor's parent-death signal can be caught, unlike the
 * command's), or when the supervisor is asked to end, it kills everything
 * left of the run and then exits the way the command did, so that the
 * launcher sees the command's exit status as its own child's.
 *
 * Plain C only, no PostgreSQL header: the supervisor is a fork of the
 * launcher that never execs, and the command's side runs between fork and
 * exec, so no PostgreSQL function (palloc, elog, latches) may run here.  The
 * launcher is single-threaded, so malloc (inside opendir) is safe after fork.
 */
#include "launcher_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher_proc.h"

extern char **environ;

/* The supervisor's parent-death signal: it can be caught, SIGKILL cannot. */
#define SUPERVISOR_DEATH_SIGNAL SIGUSR1

/* Signals that end a run at once: the launcher died, or someone asks. */
static const int end_signals[] = {SUPERVISOR_DEATH_SIGNAL, SIGTERM, SIGINT, SIGHUP, SIGQUIT};

/* Write all of buf to fd; nothing fancier is safe here. */
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

/* Report a failed step of the command's setup through the report pipe, then exit. */
static _Noreturn void
child_fail(int report_fd, const char *step)
{
	int			err = errno;
	char		msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", step, strerror(err));
	child_write(report_fd, msg, strlen(msg));
	_exit(127);
}

/* Set every signal to its default action, and block exactly the set given. */
static void
reset_signals(const sigset_t *blocked)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigprocmask(SIG_SETMASK, blocked, NULL);
}

/*
 * The command between fork and exec: tell the launcher its pid, its own
 * process group, die with the supervisor, default signals, only the pipes
 * open, the clean environment.
 */
static _Noreturn void
child_exec(const SpawnRequest *req, pid_t supervisor, int out_w, int err_w, int report_w)
{
	pid_t		self = getpid();
	sigset_t	none;
	int			devnull;

	/* the group exists before the launcher learns the pid it will signal */
	setpgid(0, 0);
	child_write(report_w, &self, sizeof(self));
	/* dies with the supervisor; a supervisor that died before this is detected below */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != supervisor)
		_exit(127);
	sigemptyset(&none);
	reset_signals(&none);

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

/* The supervisor could not start the command: report it (pid 0) and exit. */
static _Noreturn void
supervisor_fail(int report_fd, const char *step)
{
	pid_t		none = 0;

	child_write(report_fd, &none, sizeof(none));
	child_fail(report_fd, step);
}

/*
 * Keep only descriptors 0-2 and the three pipe ends, moved to 3, 4 and 5:
 * nothing else of the launcher's (relation files, other runs' pipes) stays
 * open for as long as the run lasts.
 */
static bool
keep_only_pipes(int *out_w, int *err_w, int *report_w)
{
	int		   *fds[3] = {out_w, err_w, report_w};

	/* first above every target, so that no dup3 below closes a pipe end */
	for (int i = 0; i < 3; i++)
		if ((*fds[i] = fcntl(*fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
			return false;
	for (int i = 0; i < 3; i++)
	{
		if (dup3(*fds[i], 3 + i, O_CLOEXEC) < 0)
			return false;
		*fds[i] = 3 + i;
	}
	close_range(6, ~0U, 0);
	return true;
}

/*
 * Wait until the command exits (true, *status set) or the run must end at
 * once (false): the launcher died or a signal asked for it.  Orphans that
 * exit meanwhile are reaped, so that none stays a zombie.
 */
static bool
wait_for_command(pid_t command, pid_t launcher_pid, const sigset_t *waited, int *status)
{
	for (;;)
	{
		int			st;
		pid_t		p;
		int			sig;

		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == command)
			{
				*status = st;
				return true;
			}
		if (getppid() != launcher_pid)
			return false;
		/* the signals are blocked: one that came before this call is still pending */
		sig = sigwaitinfo(waited, NULL);
		if (sig > 0 && sig != SIGCHLD)
			return false;
	}
}

/* proc_foreach visitor: SIGKILL a child of ours (arg: our pid). */
static bool
kill_if_child(const ProcInfo *info, void *arg)
{
	if (info->ppid == *(pid_t *) arg && info->state != 'Z')
		kill(info->pid, SIGKILL);
	return true;
}

/*
 * Kill what is left of the run: the command's process group, then our
 * children level by level (killing a child makes its children ours, as we
 * are a subreaper), until no child is left.  Sets *status when the command
 * itself is reaped here.  Without /proc only the process group is killed.
 */
static void
kill_the_rest(pid_t command, bool *reaped, int *status)
{
	pid_t		self = getpid();

	kill(-command, SIGKILL);
	for (;;)
	{
		int			st;
		pid_t		p;

		/* without /proc nothing more can be found: do not wait for orphans forever */
		if (!proc_foreach(kill_if_child, &self))
			break;
		p = waitpid(-1, &st, 0);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break;				/* ECHILD: nothing is left */
		do
		{
			if (p == command)
			{
				*reaped = true;
				*status = st;
			}
		} while ((p = waitpid(-1, &st, WNOHANG)) > 0);
	}
}

/* Exit as the command did: with its code, or killed by its signal (without a core dump). */
static _Noreturn void
exit_as(int status)
{
	if (WIFSIGNALED(status))
	{
		int			sig = WTERMSIG(status);
		struct rlimit no_core = {0, 0};
		sigset_t	only;

		setrlimit(RLIMIT_CORE, &no_core);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		signal(sig, SIG_DFL);
		sigemptyset(&only);
		sigaddset(&only, sig);
		sigprocmask(SIG_UNBLOCK, &only, NULL);
		kill(getpid(), sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 255);
}

/*
 * The run's supervisor: forked by the launcher, never returns.  Starts the
 * command, waits for it, kills whatever is left of the run, exits as the
 * command did.
 */
void
launcher_child_main(const SpawnRequest *req, pid_t launcher_pid, int out_w, int err_w, int report_w)
{
	sigset_t	waited;
	pid_t		self;
	pid_t		command;
	int			status = 0;
	bool		reaped;

	/* out of the launcher's group, which the postmaster signals */
	setpgid(0, 0);
	sigemptyset(&waited);
	sigaddset(&waited, SIGCHLD);
	for (int i = 0; i < (int) (sizeof(end_signals) / sizeof(end_signals[0])); i++)
		sigaddset(&waited, end_signals[i]);
	reset_signals(&waited);
	if (prctl(PR_SET_PDEATHSIG, SUPERVISOR_DEATH_SIGNAL) != 0 || getppid() != launcher_pid)
		_exit(127);
	prctl(PR_SET_NAME, "sync supervisor", 0, 0, 0);
	if (!keep_only_pipes(&out_w, &err_w, &report_w) || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		supervisor_fail(report_w, "could not set up the run's supervisor");

	self = getpid();
	command = fork();
	if (command == 0)
		child_exec(req, self, out_w, err_w, report_w);
	if (command < 0)
		supervisor_fail(report_w, "could not fork");
	/* only the command holds the pipes now: their EOF is the run's */
	close(out_w);
	close(err_w);
	close(report_w);

	reaped = wait_for_command(command, launcher_pid, &waited, &status);
	kill_the_rest(command, &reaped, &status);
	exit_as(reaped ? status : W_EXITCODE(255, 0));
}
