/*
 * util_local.c
 *		How a process of this server reaches the server itself: the socket
 *		directory and port that sync commands (PGHOST, PGPORT) and the HTTP
 *		workers' connection pool both use.
 */
#include "postgres.h"

#include "utils/varlena.h"

#include "crm_dashboard.h"

extern char *Unix_socket_directories;
extern int	PostPortNumber;

/* The first entry of unix_socket_directories, where local clients connect. */
char *
crm_local_socket_directory(void)
{
	char	   *copy = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
	List	   *dirs;

	if (!SplitDirectoriesString(copy, ',', &dirs) || dirs == NIL)
		return "/var/run/postgresql";
	return linitial(dirs);
}

/* The server's port. */
int
crm_local_port(void)
{
	return PostPortNumber;
}
