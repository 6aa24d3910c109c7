/*
 * crm_sync_simulator.c
 *		A simulator of CRM sync commands, for the crm_dashboard demo and tests.
 *
 * It behaves like a real "manage.py sync_<crm>_<model>" command without
 * talking to any CRM: it introspects ingestion.<crm>_<model>, invents
 * plausible records (a mix of changes to existing rows and new rows, with
 * values drawn from the table's own statistics where it has them), upserts
 * them in batches on the primary key, paces itself like an API client and
 * prints JSON-lines progress.  Faults (rate limit, failing records, bad API
 * key, hang, crash) can be injected to exercise the supervisor.
 *
 * A table without a primary key (a Google Sheet read as a table: rows have no
 * ids, only their position in the sheet) cannot be upserted, and appending
 * would duplicate rows on every run.  Such a table gets a full refresh, as
 * real sheet syncs do: one transaction deletes its rows and inserts the new
 * snapshot, so readers see the old snapshot until the commit and a cancel,
 * crash or kill leaves it intact.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define EXIT_USAGE 2
#define EXIT_CANCELLED 143
#define MAX_STATS 256

typedef enum Fault
{
	FAULT_NONE, FAULT_RATE_LIMIT, FAULT_PARTIAL, FAULT_AUTH, FAULT_HANG, FAULT_CRASH
} Fault;

static const char *const fault_names[] = {"none", "rate-limit", "partial", "auth", "hang", "crash"};

typedef struct Options
{
	const char *crm;
	const char *model;
	const char *schema;
	bool		full;
	const char *since;			/* YYYY-MM-DD or NULL */
	bool		force;
	bool		dry_run;
	bool		debug;
	long		max_records;	/* -1: choose a plausible number */
	long		batch_size;
	double		rate;			/* records per second; 0 = unpaced */
	Fault		fault;
} Options;

/* What the table's statistics say about one column. */
typedef struct ColumnStats
{
	int			nmcv;
	char	   *mcv[MAX_STATS];
	double		freq[MAX_STATS];
	double		n_distinct;
	int			nhist;
	char	   *hist[MAX_STATS];
} ColumnStats;

typedef struct Column
{
	char	   *name;
	char	   *type;			/* format_type(), for messages */
	char	   *typname;		/* base type name, e.g. int8, timestamptz */
	char		category;		/* pg_type.typcategory */
	bool		notnull;
	bool		pk;
	bool		skip;			/* generated, identity always, or a sync stamp */
	bool		mutable;		/* changed when an existing record is re-synced */
	char	   *id_pattern;		/* a sample id, for text primary keys */
	long long	next_id;		/* next new id, for integer primary keys */
	ColumnStats stats;
} Column;

typedef struct Target
{
	char	   *qualified;		/* quoted schema.table */
	Column	   *cols;
	int			ncols;
	int			npk;
	double		reltuples;
	bool		partitioned;	/* no xmax through a partitioned parent */
	bool		has_sync_created;
	bool		has_sync_updated;
	int			row_param;		/* parameter index of sheet_row_number, or -1 */
} Target;

typedef struct Counts
{
	long		processed;
	long		created;
	long		updated;
	long		failed;
} Counts;

static volatile sig_atomic_t cancel_requested = 0;
static Options opts;
static uint64_t rng_state;
static struct timespec started_at;

/* ---------------------------------------------------------------- output */

/* Print a plain log line: warnings and errors on stderr, the rest on stdout. */
static void
log_line(bool to_stderr, const char *fmt,...)
{
	FILE	   *out = to_stderr ? stderr : stdout;
	va_list		ap;

	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	fflush(out);
}

/* Verbose log line, printed only with --debug. */
#define debug_log(...) do { if (opts.debug) log_line(false, "debug: " __VA_ARGS__); } while (0)

/* Print s as a JSON string literal. */
static void
print_json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", stdout);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* Seconds since the sync started. */
static double
elapsed_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - started_at.tv_sec) + (now.tv_nsec - started_at.tv_nsec) / 1e9;
}

/* One JSON progress event. */
static void
emit_progress(const Counts *c, long total)
{
	printf("{\"event\":\"progress\",\"processed\":%ld,\"created\":%ld,\"updated\":%ld,"
		   "\"failed\":%ld,\"total\":%ld}\n",
		   c->processed, c->created, c->updated, c->failed, total);
	fflush(stdout);
}

/* One JSON error event for a record that could not be synced. */
static void
emit_record_error(const char *message, const char *record)
{
	fputs("{\"event\":\"error\",\"message\":", stdout);
	print_json_string(message);
	fputs(",\"record\":", stdout);
	print_json_string(record);
	fputs("}\n", stdout);
	fflush(stdout);
}

/* The final JSON summary event. */
static void
emit_summary(const Counts *c, bool cancelled)
{
	printf("{\"event\":\"summary\",\"processed\":%ld,\"created\":%ld,\"updated\":%ld,"
		   "\"failed\":%ld,\"duration_seconds\":%.3f,\"dry_run\":%s,\"cancelled\":%s}\n",
		   c->processed, c->created, c->updated, c->failed, elapsed_seconds(),
		   opts.dry_run ? "true" : "false", cancelled ? "true" : "false");
	fflush(stdout);
}

/* Report a fatal problem on stderr and exit with code. */
static void
die(int code, const char *fmt,...)
{
	va_list		ap;

	fflush(stdout);
	fputs("crm_sync_simulator: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* ---------------------------------------------------------------- arguments */

/* Print the help text, which says plainly that this is a simulator. */
static void
usage(FILE *out)
{
	fprintf(out,
			"crm_sync_simulator: a SIMULATOR of CRM sync commands (no CRM is contacted).\n"
			"It upserts invented but plausible records into ingestion.<crm>_<model> at a\n"
			"realistic pace and prints JSON-lines progress, like a real sync command.\n"
			"A table without a primary key (a sheet: rows have no ids) is replaced whole\n"
			"instead: one transaction deletes its rows and inserts the new snapshot\n"
			"(--max-records rows, default its current size give or take a few), with\n"
			"sheet_row_number set to 1..N; SIGTERM, --dry-run or a crash keep the old rows.\n\n"
			"Usage: crm_sync_simulator --crm CRM --model MODEL [options]\n\n"
			"Options:\n"
			"  --full                 full sync: a few thousand records (default: a few hundred)\n"
			"  --since YYYY-MM-DD     only records changed since that date\n"
			"  --force                ignore the last sync cursor\n"
			"  --dry-run              write nothing; report what would change\n"
			"  --max-records N        sync exactly N records (1..100000000)\n"
			"  --batch-size N         records per transaction (1..100000, default 100);\n"
			"                         for a full refresh, records per progress event\n"
			"  --rate R               records per second (0 = unpaced, default 100)\n"
			"  --fault KIND           none|rate-limit|partial|auth|hang|crash\n"
			"  --debug                verbose log lines\n"
			"  --help                 this text\n\n"
			"Environment: PGHOST, PGPORT, PGDATABASE, PGUSER (connection); CRM_SIM_FAULT and\n"
			"CRM_SIM_RATE (defaults for --fault and --rate); CRM_SIM_SCHEMA (default ingestion);\n"
			"CRM_DASHBOARD_SYNC_ID (logged).\n"
			"Exit status: 0 success (also with failed records), 1 failure, 2 bad usage,\n"
			"143 cancelled by SIGTERM.\n");
}

/* Parse an integer option within [min, max] or exit 2 naming the bad value. */
static long
parse_long(const char *name, const char *value, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		die(EXIT_USAGE, "invalid value for --%s: \"%s\" (expected an integer from %ld to %ld)",
			name, value, min, max);
	return v;
}

/* Parse the pacing rate or exit 2. */
static double
parse_rate(const char *value)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(value, &end);
	if (errno != 0 || end == value || *end != '\0' || !(v >= 0 && v <= 1e6))
		die(EXIT_USAGE, "invalid rate: \"%s\" (expected records per second from 0 to 1000000)", value);
	return v;
}

/* Parse a fault name or exit 2. */
static Fault
parse_fault(const char *value)
{
	for (int i = 0; i < (int) (sizeof(fault_names) / sizeof(fault_names[0])); i++)
		if (strcmp(value, fault_names[i]) == 0)
			return (Fault) i;
	die(EXIT_USAGE, "invalid fault: \"%s\" (expected none, rate-limit, partial, auth, hang or crash)", value);
	return FAULT_NONE;
}

/* Check that a date is a real calendar date written YYYY-MM-DD, or exit 2. */
static void
check_date(const char *value)
{
	struct tm	tm = {0};
	char	   *end = strptime(value, "%Y-%m-%d", &tm);
	int			mday = tm.tm_mday,
				mon = tm.tm_mon;

	if (end == NULL || *end != '\0' || strlen(value) != 10)
		die(EXIT_USAGE, "invalid date for --since: \"%s\" (expected YYYY-MM-DD)", value);
	/* mktime normalises 2025-02-30 to March; a real date stays put. */
	tm.tm_isdst = -1;
	tm.tm_hour = 12;
	mktime(&tm);
	if (tm.tm_mday != mday || tm.tm_mon != mon)
		die(EXIT_USAGE, "invalid date for --since: \"%s\" (no such day)", value);
}

/* Check a CRM or model name: a lowercase identifier, or exit 2. */
static void
check_name(const char *what, const char *value)
{
	size_t		len = strlen(value);

	if (len == 0 || len > 40 || !islower((unsigned char) value[0]))
		die(EXIT_USAGE, "invalid %s name: \"%s\" (expected a lowercase identifier)", what, value);
	for (size_t i = 0; i < len; i++)
		if (!islower((unsigned char) value[i]) && !isdigit((unsigned char) value[i]) && value[i] != '_')
			die(EXIT_USAGE, "invalid %s name: \"%s\" (expected a lowercase identifier)", what, value);
}

/* Fill opts from the environment and the command line; exit 2 on bad usage. */
static void
parse_arguments(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"crm", required_argument, NULL, 'c'},
		{"model", required_argument, NULL, 'm'},
		{"full", no_argument, NULL, 'F'},
		{"since", required_argument, NULL, 's'},
		{"force", no_argument, NULL, 'f'},
		{"dry-run", no_argument, NULL, 'n'},
		{"max-records", required_argument, NULL, 'x'},
		{"batch-size", required_argument, NULL, 'b'},
		{"rate", required_argument, NULL, 'r'},
		{"fault", required_argument, NULL, 'z'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *env;
	int			c;

	opts.max_records = -1;
	opts.batch_size = 100;
	opts.rate = 100;
	opts.schema = "ingestion";
	if ((env = getenv("CRM_SIM_SCHEMA")) != NULL && *env)
		opts.schema = env;
	if ((env = getenv("CRM_SIM_FAULT")) != NULL && *env)
		opts.fault = parse_fault(env);
	if ((env = getenv("CRM_SIM_RATE")) != NULL && *env)
		opts.rate = parse_rate(env);

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'c':
				opts.crm = optarg;
				break;
			case 'm':
				opts.model = optarg;
				break;
			case 'F':
				opts.full = true;
				break;
			case 's':
				check_date(optarg);
				opts.since = optarg;
				break;
			case 'f':
				opts.force = true;
				break;
			case 'n':
				opts.dry_run = true;
				break;
			case 'x':
				opts.max_records = parse_long("max-records", optarg, 1, 100000000);
				break;
			case 'b':
				opts.batch_size = parse_long("batch-size", optarg, 1, 100000);
				break;
			case 'r':
				opts.rate = parse_rate(optarg);
				break;
			case 'z':
				opts.fault = parse_fault(optarg);
				break;
			case 'd':
				opts.debug = true;
				break;
			case 'h':
				usage(stdout);
				exit(0);
			default:
				usage(stderr);
				die(EXIT_USAGE, "unknown or incomplete option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die(EXIT_USAGE, "unexpected argument \"%s\"", argv[optind]);
	if (opts.crm == NULL || opts.model == NULL)
	{
		usage(stderr);
		die(EXIT_USAGE, "--crm and --model are required");
	}
	check_name("CRM", opts.crm);
	check_name("model", opts.model);
}

/* ---------------------------------------------------------------- randomness */

/* xorshift64*: fast, good enough for invented records. */
static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* Uniform double in [0, 1). */
static double
rnd_unit(void)
{
	return (rnd() >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [lo, hi]. */
static long long
rnd_range(long long lo, long long hi)
{
	if (hi <= lo)
		return lo;
	return lo + (long long) (rnd() % (uint64_t) (hi - lo + 1));
}

/* A random element of a string array. */
#define PICK(arr) ((arr)[rnd() % (sizeof(arr) / sizeof((arr)[0]))])

static const char *const first_names[] = {
	"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
	"Elizabeth", "William", "Susan", "Carlos", "Karen", "Daniel", "Lisa", "Matthew", "Nancy",
	"Ashley", "Kevin", "Amanda", "Luis", "Maria", "Wei", "Priya", "Aaliyah", "DeShawn", "Zoë"
};
static const char *const last_names[] = {
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
	"Martinez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Lee", "Nguyen", "Patel",
	"O'Brien", "D'Angelo", "Kowalski", "Okafor", "Schmidt", "Murphy"
};
static const char *const cities[] = {
	"Columbus", "Cleveland", "Cincinnati", "Pittsburgh", "Philadelphia", "Indianapolis",
	"Louisville", "Nashville", "Charlotte", "Richmond", "Detroit", "Chicago", "Atlanta", "Tampa"
};
static const char *const states[] = {"OH", "PA", "IN", "KY", "TN", "NC", "VA", "MI", "IL", "GA", "FL"};
static const char *const domains[] = {"gmail.com", "yahoo.com", "outlook.com", "icloud.com", "comcast.net"};
static const char *const words[] = {
	"roof", "window", "siding", "bath", "estimate", "follow-up", "install", "consultation",
	"spring", "promo", "referral", "premium", "standard", "repair", "inspection"
};

/* ---------------------------------------------------------------- catalog */

/* Run a query with text parameters; exit 1 unless it returns tuples. */
static PGresult *
query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		die(1, "query failed: %s", PQerrorMessage(conn));
	return res;
}

/* Run a command without parameters; exit 1 on failure. */
static void
command(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die(1, "\"%s\" failed: %s", sql, PQerrorMessage(conn));
	PQclear(res);
}

/* Whether a column holds state a re-sync changes (as opposed to identity). */
static bool
is_mutable_name(const char *name)
{
	static const char *const keys[] = {
		"updated", "modified", "status", "stage", "disposition", "outcome", "amount", "value",
		"archived", "is_", "active", "result", "close", "deleted", "answered", "duration",
		"last_update", "cost", "expire", "lifecycle"
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strstr(name, keys[i]) != NULL)
			return true;
	return false;
}

/* Read the columns and primary key of the target table; exit 1 if it is missing. */
static void
load_columns(PGconn *conn, Target *t, const char *table)
{
	const char *params[2] = {opts.schema, table};
	PGresult   *res = query(conn,
							"SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
							"       coalesce(bt.typname, t.typname), coalesce(bt.typcategory, t.typcategory),"
							"       a.attnotnull, coalesce(a.attnum = ANY (i.indkey::int2[]), false),"
							"       a.attidentity = 'a' OR a.attgenerated <> '', c.reltuples, c.relkind"
							"  FROM pg_class c"
							"  JOIN pg_namespace n ON n.oid = c.relnamespace"
							"  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
							"  JOIN pg_type t ON t.oid = a.atttypid"
							"  LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype"
							"  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
							" WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"
							" ORDER BY a.attnum", 2, params);

	if (PQntuples(res) == 0)
		die(1, "table %s.%s does not exist (no model \"%s\" for CRM \"%s\")",
			opts.schema, table, opts.model, opts.crm);
	t->ncols = PQntuples(res);
	t->cols = calloc(t->ncols, sizeof(Column));
	t->reltuples = atof(PQgetvalue(res, 0, 7));
	t->partitioned = PQgetvalue(res, 0, 8)[0] == 'p';
	for (int i = 0; i < t->ncols; i++)
	{
		Column	   *col = &t->cols[i];

		col->name = strdup(PQgetvalue(res, i, 0));
		col->type = strdup(PQgetvalue(res, i, 1));
		col->typname = strdup(PQgetvalue(res, i, 2));
		col->category = PQgetvalue(res, i, 3)[0];
		col->notnull = PQgetvalue(res, i, 4)[0] == 't';
		col->pk = PQgetvalue(res, i, 5)[0] == 't';
		col->skip = PQgetvalue(res, i, 6)[0] == 't';
		if (strcmp(col->name, "sync_created_at") == 0 || strcmp(col->name, "sync_updated_at") == 0)
		{
			/* The warehouse's own stamps are set by the statement, not invented. */
			col->skip = true;
			if (col->name[5] == 'c')
				t->has_sync_created = true;
			else
				t->has_sync_updated = true;
		}
		col->mutable = !col->pk && !col->skip && is_mutable_name(col->name);
		t->npk += col->pk;
	}
	t->row_param = -1;
	for (int i = 0, param = 0; i < t->ncols; i++)
	{
		if (t->cols[i].skip)
			continue;
		if (strcmp(t->cols[i].name, "sheet_row_number") == 0)
			t->row_param = param;
		param++;
	}
	PQclear(res);
}

/* Read the planner statistics of the table: common values and histograms. */
static void
load_stats(PGconn *conn, Target *t, const char *table)
{
	const char *params[2] = {opts.schema, table};
	PGresult   *res = query(conn,
							"SELECT s.attname, 'm', v.val, v.freq, s.n_distinct"
							"  FROM pg_stats s,"
							"       unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS v(val, freq)"
							" WHERE s.schemaname = $1 AND s.tablename = $2"
							" UNION ALL "
							"SELECT s.attname, 'h', v.val, 0, s.n_distinct"
							"  FROM pg_stats s, unnest(s.histogram_bounds::text::text[]) AS v(val)"
							" WHERE s.schemaname = $1 AND s.tablename = $2", 2, params);

	for (int r = 0; r < PQntuples(res); r++)
	{
		for (int i = 0; i < t->ncols; i++)
		{
			ColumnStats *st = &t->cols[i].stats;

			if (strcmp(t->cols[i].name, PQgetvalue(res, r, 0)) != 0 || PQgetisnull(res, r, 2))
				continue;
			st->n_distinct = atof(PQgetvalue(res, r, 4));
			if (PQgetvalue(res, r, 1)[0] == 'm' && st->nmcv < MAX_STATS)
			{
				st->freq[st->nmcv] = atof(PQgetvalue(res, r, 3));
				st->mcv[st->nmcv++] = strdup(PQgetvalue(res, r, 2));
			}
			else if (PQgetvalue(res, r, 1)[0] == 'h' && st->nhist < MAX_STATS)
				st->hist[st->nhist++] = strdup(PQgetvalue(res, r, 2));
		}
	}
	PQclear(res);
}

/* Learn how new primary key values look: next integer, or a sample text id. */
static void
load_key_shapes(PGconn *conn, Target *t)
{
	for (int i = 0; i < t->ncols; i++)
	{
		Column	   *col = &t->cols[i];
		char	   *ident;
		char		sql[512];
		PGresult   *res;

		if (!col->pk || (col->category != 'N' && col->category != 'S'))
			continue;
		ident = PQescapeIdentifier(conn, col->name, strlen(col->name));
		if (col->category == 'N')
			snprintf(sql, sizeof(sql), "SELECT coalesce(max(%s), 1000)::text FROM %s", ident, t->qualified);
		else
			snprintf(sql, sizeof(sql), "SELECT %s::text FROM %s LIMIT 1", ident, t->qualified);
		res = query(conn, sql, 0, NULL);
		if (col->category == 'N')
			col->next_id = atoll(PQgetvalue(res, 0, 0)) + 1;
		else if (PQntuples(res) > 0)
			col->id_pattern = strdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		PQfreemem(ident);
	}
}

/*
 * Count the rows of a table without a primary key exactly: its refresh
 * replaces them all, and such tables (sheets) are small.
 */
static void
count_rows(PGconn *conn, Target *t)
{
	char	   *sql = malloc(strlen(t->qualified) + 32);
	PGresult   *res;

	sprintf(sql, "SELECT count(*) FROM %s", t->qualified);
	res = query(conn, sql, 0, NULL);
	t->reltuples = atof(PQgetvalue(res, 0, 0));
	PQclear(res);
	free(sql);
}

/* Introspect ingestion.<crm>_<model>; exit 1 if it cannot be synced. */
static void
load_target(PGconn *conn, Target *t)
{
	char		table[128];
	char	   *qs,
			   *qt;

	snprintf(table, sizeof(table), "%s_%s", opts.crm, opts.model);
	qs = PQescapeIdentifier(conn, opts.schema, strlen(opts.schema));
	qt = PQescapeIdentifier(conn, table, strlen(table));
	t->qualified = malloc(strlen(qs) + strlen(qt) + 2);
	sprintf(t->qualified, "%s.%s", qs, qt);
	PQfreemem(qs);
	PQfreemem(qt);

	load_columns(conn, t, table);
	if (t->npk == 0)
		count_rows(conn, t);
	load_stats(conn, t, table);
	load_key_shapes(conn, t);
	debug_log("table %s: %d columns, %d in the primary key, about %.0f rows",
			  t->qualified, t->ncols, t->npk, t->reltuples);
}

/* ---------------------------------------------------------------- values */

/* A new text id shaped like sample: same prefix and character classes. */
static char *
new_text_id(const char *sample)
{
	size_t		len,
				prefix = 0;
	char	   *id;
	bool		hex = true,
				letters = false;

	if (sample == NULL)
		sample = "xxxxxxxxxxxxxxxx";
	len = strlen(sample);
	id = strdup(sample);
	/* Keep a type prefix such as CAL or TRK: 2-4 capitals, none after. */
	while (prefix < len && isupper((unsigned char) sample[prefix]))
		prefix++;
	for (size_t i = prefix; i < len; i++)
		if (isupper((unsigned char) sample[i]))
			prefix = 0;
	if (prefix < 2 || prefix > 4 || prefix == len)
		prefix = 0;
	/* Hex ids (md5-like) keep to hex digits; all-digit ids stay digits. */
	for (size_t i = prefix; i < len; i++)
	{
		hex = hex && strchr("0123456789abcdef", sample[i]) != NULL;
		letters = letters || isalpha((unsigned char) sample[i]);
	}
	hex = hex && letters;
	for (size_t i = prefix; i < len; i++)
	{
		unsigned char ch = sample[i];

		if (hex)
			id[i] = "0123456789abcdef"[rnd() % 16];
		else if (isdigit(ch))
			id[i] = (char) ('0' + (i == 0 ? 1 + rnd() % 9 : rnd() % 10));
		else if (islower(ch))
			id[i] = (char) ('a' + rnd() % 26);
		else if (isupper(ch))
			id[i] = (char) ('A' + rnd() % 26);
	}
	return id;
}

/* A version 4 uuid. */
static char *
new_uuid(void)
{
	uint64_t	a = rnd(),
				b = rnd();
	char	   *s = malloc(37);

	snprintf(s, 37, "%08x-%04x-4%03x-%04x-%012llx",
			 (unsigned) (a >> 32), (unsigned) (a >> 16) & 0xffff, (unsigned) a & 0xfff,
			 (unsigned) (0x8000 | (b >> 48 & 0x3fff)), (unsigned long long) (b & 0xffffffffffffULL));
	return s;
}

/* A timestamp string: now minus a random amount of min_back..max_back seconds. */
static char *
recent_timestamp(long min_back, long max_back, bool date_only)
{
	time_t		when = time(NULL) - (time_t) rnd_range(min_back, max_back);
	struct tm	tm;
	char	   *s = malloc(40);

	gmtime_r(&when, &tm);
	strftime(s, 40, date_only ? "%Y-%m-%d" : "%Y-%m-%d %H:%M:%S+00", &tm);
	return s;
}

/* How far back (seconds) changed records reach: --since, else a day or a year. */
static long
change_window(void)
{
	if (opts.since)
	{
		struct tm	tm = {0};
		long		back;

		strptime(opts.since, "%Y-%m-%d", &tm);
		back = (long) (time(NULL) - timegm(&tm));
		return back > 0 ? back : 0;
	}
	return opts.full ? 365L * 86400 : 86400;
}

/* A common value drawn with the frequencies the statistics report. */
static const char *
weighted_mcv(const ColumnStats *st)
{
	double		total = 0,
				x;

	for (int i = 0; i < st->nmcv; i++)
		total += st->freq[i];
	x = rnd_unit() * total;
	for (int i = 0; i < st->nmcv; i++)
		if ((x -= st->freq[i]) <= 0)
			return st->mcv[i];
	return st->mcv[st->nmcv - 1];
}

/* The invented person of the record being built, so names and e-mail agree. */
static const char *person_first;
static const char *person_last;

/* Choose the person of the next record. */
static void
new_person(void)
{
	person_first = PICK(first_names);
	person_last = PICK(last_names);
}

/* An e-mail address for the current person: ASCII letters and digits only. */
static char *
person_email(void)
{
	char		raw[128],
				local[128],
				*email = malloc(192);
	size_t		n = 0;

	snprintf(raw, sizeof(raw), "%s.%s", person_first, person_last);
	for (const char *p = raw; *p && n < sizeof(local) - 1; p++)
		if (isalnum((unsigned char) *p) || *p == '.')
			local[n++] = (char) tolower((unsigned char) *p);
	local[n] = '\0';
	if (rnd() % 3 == 0)
		snprintf(email, 192, "%.100s@%s", local, PICK(domains));
	else
		snprintf(email, 192, "%.100s%d@%s", local, (int) rnd_range(1, 99), PICK(domains));
	return email;
}

/* The current person's field a column names (e-mail, first or last name), or NULL. */
static char *
person_field(const char *name)
{
	if (strstr(name, "email"))
		return person_email();
	if (strstr(name, "first"))
		return strdup(person_first);
	if (strstr(name, "last") && strstr(name, "name"))
		return strdup(person_last);
	return NULL;
}

/* A plausible text value chosen by the column's name, or NULL if the name says nothing. */
static char *
text_by_name(const char *name)
{
	char		buf[256];

	if (strstr(name, "phone"))
		snprintf(buf, sizeof(buf), "(%lld) %lld-%04lld", rnd_range(201, 989), rnd_range(200, 999),
				 rnd_range(0, 9999));
	else if (strstr(name, "city"))
		snprintf(buf, sizeof(buf), "%s", PICK(cities));
	else if (strstr(name, "state"))
		snprintf(buf, sizeof(buf), "%s", PICK(states));
	else if (strstr(name, "zip") || strstr(name, "postal"))
		snprintf(buf, sizeof(buf), "%05lld", rnd_range(43000, 47999));
	else if (strstr(name, "address") || strstr(name, "street"))
		snprintf(buf, sizeof(buf), "%lld %s St", rnd_range(100, 9999), PICK(last_names));
	else if (strstr(name, "name") || strstr(name, "title"))
		snprintf(buf, sizeof(buf), "%s %s", person_first, person_last);
	else
		return NULL;
	return strdup(buf);
}

/*
 * A text value: the record's person first, then common values from the
 * statistics, then the column's name, then real samples, then words.
 */
static char *
text_value(const Column *col)
{
	const ColumnStats *st = &col->stats;
	char	   *v;
	char		buf[128];

	if ((v = person_field(col->name)) != NULL)
		return v;
	if (st->nmcv > 0 && st->n_distinct > 0 && st->n_distinct <= 100)
		return strdup(weighted_mcv(st));
	if ((v = text_by_name(col->name)) != NULL)
		return v;
	if (st->nhist > 0)
		return strdup(st->hist[rnd() % st->nhist]);
	if (st->nmcv > 0)
		return strdup(weighted_mcv(st));
	snprintf(buf, sizeof(buf), "%s %s %s", PICK(words), PICK(words), PICK(words));
	return strdup(buf);
}

/* A number within the column's histogram range (or a plausible default). */
static char *
number_value(const Column *col)
{
	const ColumnStats *st = &col->stats;
	double		lo = 1,
				hi = 10000;
	char	   *s = malloc(64);

	if (st->nhist >= 2)
	{
		lo = atof(st->hist[0]);
		hi = atof(st->hist[st->nhist - 1]);
	}
	else if (st->nmcv > 0)
		lo = hi = atof(weighted_mcv(st));
	if (strcmp(col->typname, "int2") == 0 || strcmp(col->typname, "int4") == 0 ||
		strcmp(col->typname, "int8") == 0)
		snprintf(s, 64, "%lld", rnd_range((long long) lo, (long long) hi));
	else if (strcmp(col->typname, "numeric") == 0)
		snprintf(s, 64, "%.2f", lo + rnd_unit() * (hi - lo));
	else
		snprintf(s, 64, "%.6f", lo + rnd_unit() * (hi - lo));
	return s;
}

/* A date/time value: recent for change stamps, else within the column's range. */
static char *
datetime_value(const Column *col)
{
	bool		created = strstr(col->name, "creat") || strstr(col->name, "add_date") ||
		strstr(col->name, "submitted");
	bool		changed = is_mutable_name(col->name);
	const ColumnStats *st = &col->stats;
	long		window = change_window();
	bool		date_only = strcmp(col->typname, "date") == 0;
	char	   *s;

	if (strcmp(col->typname, "time") == 0 || strcmp(col->typname, "timetz") == 0)
	{
		s = malloc(16);
		snprintf(s, 16, "%02lld:%02lld:00", rnd_range(8, 19), rnd_range(0, 3) * 15);
		return s;
	}
	if (strcmp(col->typname, "interval") == 0)
		return strdup("1 hour");
	/* A record is created before it is last changed, both inside the window. */
	if (created)
		return recent_timestamp(window / 2, window, date_only);
	if (changed)
		return recent_timestamp(0, window / 2, date_only);
	if (st->nhist > 0)
		return strdup(st->hist[rnd() % st->nhist]);
	return recent_timestamp(0, 180L * 86400, date_only);
}

/* A value for a column of a new record, or NULL for SQL NULL. */
static char *
column_value(const Column *col)
{
	const char *t = col->typname;

	if (!col->notnull && !col->pk && rnd_unit() < 0.03)
		return NULL;
	if (col->category == 'B')
		return strdup(col->stats.nmcv > 0 ? weighted_mcv(&col->stats) : (rnd() & 1 ? "true" : "false"));
	if (col->category == 'N')
		return number_value(col);
	if (col->category == 'D' || col->category == 'T')
		return datetime_value(col);
	if (strcmp(t, "uuid") == 0)
		return new_uuid();
	if (strcmp(t, "json") == 0 || strcmp(t, "jsonb") == 0)
		return strdup(col->stats.nhist > 0 ? col->stats.hist[rnd() % col->stats.nhist] :
					  col->stats.nmcv > 0 ? weighted_mcv(&col->stats) : "{}");
	if (col->category == 'S')
		return text_value(col);
	if (!col->notnull)
		return NULL;
	die(1, "cannot invent values for column \"%s\" of type %s", col->name, col->type);
	return NULL;
}

/* A value for a primary key column of a new record. */
static char *
new_key_value(Column *col)
{
	char	   *s;

	if (col->category == 'N')
	{
		s = malloc(32);
		snprintf(s, 32, "%lld", col->next_id++);
		return s;
	}
	if (col->category == 'S')
		return new_text_id(col->id_pattern);
	if (strcmp(col->typname, "uuid") == 0)
		return new_uuid();
	return column_value(col);
}

/* ---------------------------------------------------------------- the upsert */

/* Append a formatted string to a growing buffer. */
static void
append(char **buf, size_t *len, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	*buf = realloc(*buf, *len + n + 1);
	va_start(ap, fmt);
	vsnprintf(*buf + *len, n + 1, fmt, ap);
	va_end(ap);
	*len += n;
}

/*
 * Start the upsert of a partitioned table with a CTE that sees whether the
 * key exists: xmax cannot be read through a partitioned parent.  The CTE
 * reads the statement's snapshot, taken before the insert; that is exact
 * because only one run of a model writes its table at a time.
 */
static void
append_prior_check(PGconn *conn, const Target *t, char **sql, size_t *len)
{
	int			param = 0,
				n = 0;

	append(sql, len, "WITH prior AS (SELECT FROM %s WHERE ", t->qualified);
	for (int i = 0; i < t->ncols; i++)
	{
		char	   *ident;

		if (t->cols[i].skip)
			continue;
		param++;
		if (!t->cols[i].pk)
			continue;
		ident = PQescapeIdentifier(conn, t->cols[i].name, strlen(t->cols[i].name));
		append(sql, len, "%s%s = $%d", n++ ? " AND " : "", ident, param);
		PQfreemem(ident);
	}
	append(sql, len, ") ");
}

/* Which columns a list takes. */
typedef bool (*ColumnFilter) (const Column *col);

/* Filter: columns the statement writes (not generated, not sync stamps). */
static bool
is_written(const Column *col)
{
	return !col->skip;
}

/* Filter: primary key columns. */
static bool
is_key(const Column *col)
{
	return col->pk;
}

/* Filter: columns a re-sync overwrites. */
static bool
is_mutable(const Column *col)
{
	return col->mutable;
}

/*
 * Append one item per column passing filter, comma-separated; item is a
 * format given the quoted column name twice.  Returns the number of items.
 */
static int
append_columns(PGconn *conn, const Target *t, ColumnFilter filter, const char *item,
			   char **sql, size_t *len)
{
	int			n = 0;

	for (int i = 0; i < t->ncols; i++)
	{
		char	   *ident;

		if (!filter(&t->cols[i]))
			continue;
		ident = PQescapeIdentifier(conn, t->cols[i].name, strlen(t->cols[i].name));
		if (n++ > 0)
			append(sql, len, ", ");
		append(sql, len, item, ident, ident);
		PQfreemem(ident);
	}
	return n;
}

/*
 * Append "INSERT INTO t (written columns, sync stamps) VALUES ($1.., now()..)",
 * the part the upsert and the full refresh's insert share.
 */
static void
append_insert_values(PGconn *conn, const Target *t, char **sql, size_t *len)
{
	int			n;

	append(sql, len, "INSERT INTO %s (", t->qualified);
	n = append_columns(conn, t, is_written, "%s", sql, len);
	append(sql, len, "%s%s) VALUES (", t->has_sync_created ? ", sync_created_at" : "",
		   t->has_sync_updated ? ", sync_updated_at" : "");
	for (int i = 1; i <= n; i++)
		append(sql, len, "%s$%d", i > 1 ? ", " : "", i);
	append(sql, len, "%s%s)", t->has_sync_created ? ", now()" : "",
		   t->has_sync_updated ? ", now()" : "");
}

/*
 * Build the upsert.  Only columns that hold state are overwritten on conflict:
 * a re-synced record keeps its identity (names, creation dates) while its
 * status and modification stamps move on.  RETURNING (xmax = 0) tells an
 * insert from an update exactly.
 */
static char *
build_upsert(PGconn *conn, const Target *t)
{
	char	   *sql = NULL;
	size_t		len = 0;
	int			n;

	if (t->partitioned)
		append_prior_check(conn, t, &sql, &len);
	append_insert_values(conn, t, &sql, &len);
	append(&sql, &len, " ON CONFLICT (");
	append_columns(conn, t, is_key, "%s", &sql, &len);
	append(&sql, &len, ") DO UPDATE SET ");
	n = append_columns(conn, t, is_mutable, "%s = excluded.%s", &sql, &len);
	if (t->has_sync_updated)
		append(&sql, &len, "%ssync_updated_at = now()", n++ ? ", " : "");
	/* Nothing holds state: rewrite the key so the conflict still counts as an update. */
	if (n == 0)
		append_columns(conn, t, is_key, "%s = excluded.%s", &sql, &len);
	append(&sql, &len, t->partitioned ? " RETURNING NOT EXISTS (SELECT FROM prior)" : " RETURNING (xmax = 0)");
	return sql;
}

/*
 * Build the plain insert of a full refresh.  RETURNING true lets it share
 * write_record with the upsert: every written row is a created one.
 */
static char *
build_insert(PGconn *conn, const Target *t)
{
	char	   *sql = NULL;
	size_t		len = 0;

	append_insert_values(conn, t, &sql, &len);
	append(&sql, &len, " RETURNING true");
	return sql;
}

/* Fetch up to n random primary keys of existing rows, as text, one row each. */
static PGresult *
sample_existing_keys(PGconn *conn, const Target *t, long n)
{
	char	   *sql = NULL,
			   *ident;
	size_t		len = 0;
	int			k = 0;
	double		pct = t->reltuples > 0 ? 300.0 * n / t->reltuples : 100;
	PGresult   *res;

	append(&sql, &len, "SELECT ");
	for (int i = 0; i < t->ncols; i++)
	{
		if (!t->cols[i].pk)
			continue;
		ident = PQescapeIdentifier(conn, t->cols[i].name, strlen(t->cols[i].name));
		append(&sql, &len, "%s%s::text", k++ ? ", " : "", ident);
		PQfreemem(ident);
	}
	/* BERNOULLI reads every page but sorts nothing: cheap even on big tables. */
	append(&sql, &len, " FROM %s TABLESAMPLE BERNOULLI (%.6f) ORDER BY random() LIMIT %ld",
		   t->qualified, pct > 100 ? 100 : pct, n);
	res = query(conn, sql, 0, NULL);
	free(sql);
	return res;
}

/* Fill values[] for one record: an existing key (update) or a new one. */
static void
make_record(Target *t, char **values, PGresult *keys, int key_row)
{
	int			n = 0,
				k = 0;

	new_person();
	for (int i = 0; i < t->ncols; i++)
	{
		Column	   *col = &t->cols[i];

		if (col->skip)
			continue;
		if (col->pk && key_row >= 0)
			values[n++] = strdup(PQgetvalue(keys, key_row, k++));
		else if (col->pk)
			values[n++] = new_key_value(col);
		else
			values[n++] = column_value(col);
	}
}

/* The record's id for messages: its key values joined by '/'. */
static void
record_id(const Target *t, char **values, char *buf, size_t size)
{
	int			n = 0;
	size_t		used = 0;

	buf[0] = '\0';
	for (int i = 0; i < t->ncols; i++)
	{
		if (t->cols[i].skip)
			continue;
		if (t->cols[i].pk && used < size)
			used += snprintf(buf + used, size - used, "%s%s", used ? "/" : "", values[n] ? values[n] : "");
		n++;
	}
}

/* A validation message of the kind a CRM API returns for a bad record. */
static const char *
validation_message(void)
{
	static const char *const msgs[] = {
		"validation error: email invalid",
		"validation error: phone number has too few digits",
		"validation error: state is not a two-letter code",
		"validation error: required property 'lastname' is missing"
	};

	return PICK(msgs);
}

/*
 * Write one record with the prepared statement inside the open transaction;
 * update counts or report an error naming the record id.
 */
static void
write_record(PGconn *conn, int nparams, char **values, const char *id, Counts *batch)
{
	char		msg[1024];
	const char *primary;
	PGresult   *res;

	batch->processed++;
	if (opts.fault == FAULT_PARTIAL && rnd_unit() < 0.02)
	{
		batch->failed++;
		emit_record_error(validation_message(), id);
		return;
	}
	/* A savepoint per record: one bad row must not lose the whole batch. */
	command(conn, "SAVEPOINT record");
	res = PQexecPrepared(conn, "write", nparams, (const char *const *) values, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
	{
		bool		inserted = PQgetvalue(res, 0, 0)[0] == 't';

		if (inserted)
			batch->created++;
		else
			batch->updated++;
		debug_log("write %s -> %s", id, inserted ? "created" : "updated");
		PQclear(res);
		command(conn, "RELEASE SAVEPOINT record");
		return;
	}
	primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	snprintf(msg, sizeof(msg), "database error: %s", primary ? primary : PQerrorMessage(conn));
	batch->failed++;
	emit_record_error(msg, id);
	PQclear(res);
	command(conn, "ROLLBACK TO SAVEPOINT record");
}

/* ---------------------------------------------------------------- pacing and faults */

/* Sleep for seconds, waking early when SIGTERM arrives. */
static void
pause_seconds(double seconds)
{
	struct timespec ts;

	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t) seconds;
	ts.tv_nsec = (long) ((seconds - ts.tv_sec) * 1e9);
	while (!cancel_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sleep until processed records fit the pacing rate. */
static void
pace(long processed)
{
	if (opts.rate > 0)
		pause_seconds(processed / opts.rate - elapsed_seconds());
}

/* The CRM's display name, for log lines. */
static const char *
crm_display(void)
{
	static const char *const pairs[][2] = {
		{"genius", "Genius"}, {"hubspot", "HubSpot"}, {"callrail", "CallRail"}, {"arrivy", "Arrivy"},
		{"leadconduit", "LeadConduit"}, {"marketsharp", "MarketSharp"}, {"salespro", "SalesPro"},
		{"salesrabbit", "SalesRabbit"}, {"gsheet", "Google Sheets"}, {"five9", "Five9"}
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (strcmp(opts.crm, pairs[i][0]) == 0)
			return pairs[i][1];
	return opts.crm;
}

/* Log fetching one page the way this CRM's client would. */
static void
log_fetch(long page, long offset, long size)
{
	const char *crm = opts.crm;

	if (strcmp(crm, "hubspot") == 0)
		log_line(false, "Fetching page %ld from HubSpot API (after=%ld, limit=%ld)", page, offset, size);
	else if (strcmp(crm, "genius") == 0)
		log_line(false, "Reading %s rows %ld-%ld from Genius MySQL", opts.model, offset + 1, offset + size);
	else if (strcmp(crm, "marketsharp") == 0)
		log_line(false, "Fetching OData page from MarketSharp ($top=%ld&$skip=%ld)", size, offset);
	else if (strcmp(crm, "leadconduit") == 0)
		log_line(false, "Fetching events from LeadConduit API (page %ld, limit=%ld)", page, size);
	else if (strcmp(crm, "gsheet") == 0)
		log_line(false, "Reading rows %ld-%ld from Google Sheets", offset + 2, offset + size + 1);
	else if (strcmp(crm, "five9") == 0)
		log_line(false, "Fetching contact records from Five9 SOAP API (batch %ld)", page);
	else
		log_line(false, "Fetching page %ld from %s API (per_page=%ld)", page, crm_display(), size);
}

/* Apply the injected fault due at this point of the run, if any. */
static void
maybe_fault(long processed, long total, bool *rate_limited)
{
	if (opts.fault == FAULT_RATE_LIMIT && !*rate_limited && processed >= total / 3)
	{
		int			wait = (int) rnd_range(2, 5);

		*rate_limited = true;
		log_line(true, "HTTP 429 Too Many Requests; retrying after %d s", wait);
		pause_seconds(wait);
	}
	else if (opts.fault == FAULT_HANG && processed > 0)
	{
		log_line(true, "Waiting for a response from %s API...", crm_display());
		/* Never progresses again; only a signal ends the run. */
		while (!cancel_requested)
			pause();
	}
	else if (opts.fault == FAULT_CRASH && processed >= total / 2)
	{
		log_line(true, "Segmentation fault while parsing the %s response", crm_display());
		abort();
	}
}

/* ---------------------------------------------------------------- the run */

/* SIGTERM/SIGINT: only set a flag; the loop rolls back and summarises. */
static void
on_sigterm(int signo)
{
	(void) signo;
	cancel_requested = 1;
}

/* Connect with the libpq environment variables; exit 1 on failure. */
static PGconn *
connect_database(void)
{
	PGconn	   *conn = PQconnectdb("application_name=crm_sync_simulator");

	if (PQstatus(conn) != CONNECTION_OK)
		die(1, "could not connect to the warehouse: %s", PQerrorMessage(conn));
	return conn;
}

/* How many records this run syncs. */
static long
plan_total(const Target *t)
{
	long		plan = opts.full ? rnd_range(2000, 5000) : rnd_range(200, 600);

	if (opts.max_records > 0)
		return opts.max_records;
	/* A sheet read again has gained or lost a few rows (reltuples is exact here). */
	if (t->npk == 0)
	{
		long		n = (long) t->reltuples + rnd_range(t->reltuples >= 3 ? -3 : 0, 3);

		return n > 0 ? n : 1;
	}
	/* A small lookup table is re-read whole, plus the odd new row. */
	if (t->reltuples >= 0 && t->reltuples < plan)
		return (long) t->reltuples + (opts.full ? 0 : rnd_range(0, 2)) + (t->reltuples < 1 ? 5 : 0);
	return plan;
}

/* Run one batch in its own transaction; add its counts when it commits. */
static bool
run_batch(PGconn *conn, Target *t, int nparams, long size, Counts *totals)
{
	double		update_share = opts.full ? 0.9 : 0.7;
	PGresult   *keys = sample_existing_keys(conn, t, (long) (size * update_share + 0.5));
	int			nkeys = PQntuples(keys);
	char	  **values = calloc(nparams, sizeof(char *));
	Counts		batch = {0};

	command(conn, "BEGIN");
	for (long r = 0; r < size && !cancel_requested; r++)
	{
		char		id[256];

		make_record(t, values, keys, r < nkeys ? (int) r : -1);
		record_id(t, values, id, sizeof(id));
		write_record(conn, nparams, values, id, &batch);
		for (int i = 0; i < nparams; i++)
			free(values[i]);
	}
	free(values);
	PQclear(keys);
	if (cancel_requested)
	{
		command(conn, "ROLLBACK");
		log_line(true, "Received SIGTERM; rolled back the current batch of %ld records", batch.processed);
		return false;
	}
	command(conn, opts.dry_run ? "ROLLBACK" : "COMMIT");
	totals->processed += batch.processed;
	totals->created += batch.created;
	totals->updated += batch.updated;
	totals->failed += batch.failed;
	return true;
}

/* Upsert the records in batches of their own transactions, with progress after each. */
static void
sync_batches(PGconn *conn, Target *t, int nparams, long total, Counts *totals)
{
	bool		rate_limited = false;

	for (long page = 1; totals->processed < total && !cancel_requested; page++)
	{
		long		size = total - totals->processed < opts.batch_size ? total - totals->processed : opts.batch_size;

		maybe_fault(totals->processed, total, &rate_limited);
		if (cancel_requested)
			break;
		log_fetch(page, totals->processed, size);
		if (!run_batch(conn, t, nparams, size, totals))
			break;
		emit_progress(totals, total);
		pace(totals->processed);
	}
}

/*
 * Open the refresh transaction: lock out other writers, then delete every row.
 * SHARE ROW EXCLUSIVE conflicts with itself and with writers, so two refreshes
 * cannot interleave (each would keep the other's snapshot and double the
 * rows), yet readers keep reading the old snapshot meanwhile.  TRUNCATE would
 * block them for the whole paced run.  Returns the number of rows deleted.
 */
static long
begin_refresh(PGconn *conn, const Target *t)
{
	char	   *sql = malloc(strlen(t->qualified) + 64);
	PGresult   *res;
	long		deleted;

	command(conn, "BEGIN");
	/* A refresh already running holds the lock for minutes: fail instead of queueing. */
	command(conn, "SET LOCAL lock_timeout = '10s'");
	sprintf(sql, "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", t->qualified);
	command(conn, sql);
	command(conn, "SET LOCAL lock_timeout = 0");
	sprintf(sql, "DELETE FROM %s", t->qualified);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die(1, "\"%s\" failed: %s", sql, PQerrorMessage(conn));
	deleted = atol(PQcmdTuples(res));
	PQclear(res);
	free(sql);
	return deleted;
}

/* Fill values[] for one row of the new snapshot, at position row of the sheet. */
static void
make_snapshot_row(Target *t, char **values, long row)
{
	make_record(t, values, NULL, -1);
	if (t->row_param >= 0)
	{
		free(values[t->row_param]);
		values[t->row_param] = malloc(24);
		snprintf(values[t->row_param], 24, "%ld", row);
	}
}

/* Insert one progress batch of the snapshot, rows after those already processed. */
static void
insert_snapshot_batch(PGconn *conn, Target *t, int nparams, long size, Counts *run)
{
	char	  **values = calloc(nparams, sizeof(char *));

	for (long r = 0; r < size && !cancel_requested; r++)
	{
		long		row = run->processed + 1;
		char		id[64];

		/* A row that fails validation is skipped: its row number stays unused. */
		snprintf(id, sizeof(id), "row %ld", row);
		make_snapshot_row(t, values, row);
		write_record(conn, nparams, values, id, run);
		for (int i = 0; i < nparams; i++)
			free(values[i]);
	}
	free(values);
}

/*
 * Replace the whole table in one transaction (it has no row ids to upsert
 * on).  Progress events come per batch from inside the transaction; counts
 * reach totals only when the new snapshot commits (or would, in a dry run).
 * Any way out before the commit leaves the previous snapshot untouched.
 */
static void
sync_snapshot(PGconn *conn, Target *t, int nparams, long total, Counts *totals)
{
	const char *what = strcmp(opts.crm, "gsheet") == 0 ? "sheet" : "table";
	bool		rate_limited = false;
	Counts		run = {0};
	long		deleted;

	log_line(false, "The %s has no row ids (no primary key): replacing it as a whole in one transaction",
			 what);
	deleted = begin_refresh(conn, t);
	debug_log("deleted %ld rows of the previous snapshot", deleted);
	for (long page = 1; run.processed < total && !cancel_requested; page++)
	{
		long		size = total - run.processed < opts.batch_size ? total - run.processed : opts.batch_size;

		maybe_fault(run.processed, total, &rate_limited);
		if (cancel_requested)
			break;
		log_fetch(page, run.processed, size);
		insert_snapshot_batch(conn, t, nparams, size, &run);
		if (cancel_requested)
			break;
		emit_progress(&run, total);
		pace(run.processed);
	}
	if (cancel_requested)
	{
		command(conn, "ROLLBACK");
		log_line(true, "Received SIGTERM; rolled back the refresh: %ld new rows discarded, "
				 "the previous %ld rows kept", run.created, deleted);
		return;
	}
	command(conn, opts.dry_run ? "ROLLBACK" : "COMMIT");
	log_line(false, "Replaced %ld rows with a snapshot of %ld%s", deleted, run.created,
			 opts.dry_run ? " (dry run: rolled back)" : "");
	*totals = run;
}

/* Log what is about to happen. */
static void
log_start(const Target *t, long total)
{
	const char *sync_id = getenv("CRM_DASHBOARD_SYNC_ID");
	char		pace_text[64] = "unpaced";

	if (opts.rate > 0)
		snprintf(pace_text, sizeof(pace_text), "%g records/s", opts.rate);

	/* A refresh is always a full sync, whatever --full says. */
	log_line(true, "Starting %s %s sync of %s (simulated%s%s)",
			 opts.full || t->npk == 0 ? "full" : "incremental", crm_display(), opts.model,
			 opts.dry_run ? ", dry run" : "", opts.force ? ", forced" : "");
	if (sync_id)
		log_line(false, "crm_dashboard run id %s", sync_id);
	if (opts.since)
		log_line(false, "Fetching records modified since %s", opts.since);
	if (opts.force)
		log_line(false, "--force: ignoring the saved sync cursor");
	log_line(false, "Target %s, about %.0f rows; %ld records to sync in batches of %ld, %s",
			 t->qualified, t->reltuples < 0 ? 0 : t->reltuples, total, opts.batch_size, pace_text);
	if (opts.fault != FAULT_NONE)
		debug_log("injected fault: %s", fault_names[opts.fault]);
}

/* Prepare the statement that writes one record: an upsert, or an insert for a refresh. */
static int
prepare_write(PGconn *conn, const Target *t)
{
	int			nparams = 0;
	char	   *sql = t->npk > 0 ? build_upsert(conn, t) : build_insert(conn, t);
	PGresult   *res;

	for (int i = 0; i < t->ncols; i++)
		nparams += !t->cols[i].skip;
	debug_log("write statement: %s", sql);
	res = PQprepare(conn, "write", sql, nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die(1, "could not prepare the write statement: %s", PQerrorMessage(conn));
	PQclear(res);
	free(sql);
	return nparams;
}

/* Sync the records, print progress and the summary; return the exit code. */
static int
run(PGconn *conn, Target *t)
{
	long		total = plan_total(t);
	int			nparams = prepare_write(conn, t);
	Counts		totals = {0};

	log_start(t, total);
	if (opts.fault == FAULT_AUTH)
	{
		log_line(false, "Authenticating with %s API", crm_display());
		die(1, "HTTP 401: invalid API key");
	}
	if (t->npk > 0)
		sync_batches(conn, t, nparams, total, &totals);
	else
		sync_snapshot(conn, t, nparams, total, &totals);
	if (cancel_requested)
		log_line(true, "Cancelled by SIGTERM after %ld records", totals.processed);
	emit_summary(&totals, cancel_requested);
	if (cancel_requested)
		return EXIT_CANCELLED;
	log_line(false, "Done: %ld processed, %ld created, %ld updated, %ld failed%s", totals.processed,
			 totals.created, totals.updated, totals.failed, opts.dry_run ? " (dry run: nothing written)" : "");
	return 0;
}

/* Parse, connect, introspect the target table and run the simulated sync. */
int
main(int argc, char **argv)
{
	struct sigaction sa;
	PGconn	   *conn;
	Target		target = {0};
	int			code;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_arguments(argc, argv);
	clock_gettime(CLOCK_MONOTONIC, &started_at);
	rng_state = (uint64_t) time(NULL) * 6364136223846793005ULL ^ (uint64_t) getpid() ^ 0x9e3779b97f4a7c15ULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigterm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);	/* no SA_RESTART: sleeps wake up */
	sigaction(SIGINT, &sa, NULL);

	conn = connect_database();
	load_target(conn, &target);
	code = run(conn, &target);
	PQfinish(conn);
	return code;
}
