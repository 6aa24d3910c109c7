/*
 * sync_options.c
 *		The options of a sync request: one table says each option's name, type,
 *		range, command-line flag and help, and everything else reads it —
 *		validation, the flags appended to argv, the hint of an error, and the
 *		description crm_api.capabilities() gives clients (the web UI builds its
 *		forms from it).
 *
 * An error about one option names it in the message and carries its name, and
 * nothing else, as the error's detail, so that clients can show the error
 * beside the right field without reading the message.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "crm_dashboard.h"
#include "sync_options.h"

typedef enum SyncOptionKind
{
	OPTION_BOOLEAN,
	OPTION_INTEGER,
	OPTION_DATE
} SyncOptionKind;

typedef struct SyncOptionDef
{
	const char *name;
	SyncOptionKind kind;
	int64		min;			/* integers only */
	int64		max;
	const char *unit;			/* of an integer, e.g. "seconds"; NULL: a count */
	const char *flag;			/* appended to argv; NULL: the launcher applies it */
	const char *label;
	const char *help;
} SyncOptionDef;

/* Every option, in the order their flags are appended. */
static const SyncOptionDef option_defs[SYNC_OPTION_COUNT] = {
	[SYNC_OPTION_FORCE] = {"force", OPTION_BOOLEAN, 0, 0, NULL, "--force",
	"Force", "Run even if the data looks up to date or an error-severity data-quality check fails"},
	[SYNC_OPTION_FULL] = {"full", OPTION_BOOLEAN, 0, 0, NULL, "--full",
	"Full sync", "Fetch every record, not only changes"},
	[SYNC_OPTION_SINCE] = {"since", OPTION_DATE, 0, 0, NULL, "--since",
	"Since (changes from)", "Only records changed on or after this date"},
	[SYNC_OPTION_DRY_RUN] = {"dry_run", OPTION_BOOLEAN, 0, 0, NULL, "--dry-run",
	"Dry run", "Fetch and validate, write nothing"},
	[SYNC_OPTION_MAX_RECORDS] = {"max_records", OPTION_INTEGER, 1, 100000000, NULL, "--max-records",
	"Max records", "Stop after this many records"},
	[SYNC_OPTION_BATCH_SIZE] = {"batch_size", OPTION_INTEGER, 1, 100000, NULL, "--batch-size",
	"Batch size", "Records per batch"},
	[SYNC_OPTION_DEBUG] = {"debug", OPTION_BOOLEAN, 0, 0, NULL, "--debug",
	"Debug output", "Verbose log"},
	[SYNC_OPTION_TIMEOUT] = {"timeout", OPTION_INTEGER, 1, 86400, "seconds", NULL,
	"Timeout (seconds)", "Stop the run after this long"},
	[SYNC_OPTION_IGNORE_PAUSE] = {"ignore_pause", OPTION_BOOLEAN, 0, 0, NULL, NULL,
	"Start even if paused", "Run although the model or its CRM is paused"},
};

/* "force, full, ... timeout (1..86400)": every option, for hints. */
static char *
options_summary(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < SYNC_OPTION_COUNT; i++)
	{
		const SyncOptionDef *d = &option_defs[i];

		appendStringInfo(&buf, "%s%s", i ? ", " : "", d->name);
		if (d->kind == OPTION_INTEGER)
			appendStringInfo(&buf, " (%s%s" INT64_FORMAT ".." INT64_FORMAT ")",
							 d->unit ? d->unit : "", d->unit ? ", " : "", d->min, d->max);
		else if (d->kind == OPTION_DATE)
			appendStringInfoString(&buf, " (\"YYYY-MM-DD\")");
	}
	return buf.data;
}

/* Raise the error for a bad value of option d. */
static void pg_attribute_noreturn()
option_error(const SyncOptionDef *d, const char *message, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("sync option \"%s\" %s", d->name, message),
			 errdetail("%s", d->name),
			 errhint("%s", hint)));
}

/* A boolean option. */
static bool
option_bool(const SyncOptionDef *d, JsonbValue *v)
{
	if (v->type != jbvBool)
		option_error(d, psprintf("must be a boolean, not %s", crm_json_type_name(v)),
					 psprintf("Use true or false, e.g. {\"%s\": true}.", d->name));
	return v->val.boolean;
}

/* An integer option within its range. */
static int64
option_int(const SyncOptionDef *d, JsonbValue *v)
{
	char	   *hint = psprintf("Use an integer from " INT64_FORMAT " to " INT64_FORMAT ".", d->min, d->max);
	char	   *text;
	char	   *end;
	int64		n;

	if (v->type != jbvNumeric)
		option_error(d, psprintf("must be a number, not %s", crm_json_type_name(v)), hint);
	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	n = strtoll(text, &end, 10);
	if (*end != '\0')
		option_error(d, psprintf("must be an integer, not %s", text), hint);
	if (errno == ERANGE || n < d->min || n > d->max)
		option_error(d, psprintf("is out of range: %s", text), hint);
	return n;
}

/* A date option: an existing calendar date, YYYY-MM-DD, not in the future. */
static char *
option_date(const SyncOptionDef *d, JsonbValue *v)
{
	const char *hint = "Use an existing date in the form YYYY-MM-DD, e.g. \"2024-01-31\".";
	char	   *s;
	int			y,
				m,
				day;

	if (v->type != jbvString)
		option_error(d, psprintf("must be a string, not %s", crm_json_type_name(v)), hint);
	s = pnstrdup(v->val.string.val, v->val.string.len);
	if (strlen(s) != 10 || strspn(s, "0123456789-") != 10 || s[4] != '-' || s[7] != '-' ||
		sscanf(s, "%4d-%2d-%2d", &y, &m, &day) != 3 ||
		m < 1 || m > 12 || day < 1 || day > day_tab[isleap(y)][m - 1] || y < 1900)
		option_error(d, psprintf("is not a valid date: \"%s\"", s), hint);
	if (date2j(y, m, day) - POSTGRES_EPOCH_JDATE > GetSQLCurrentDate())
		option_error(d, psprintf("is in the future: %s", s), "Use today's date or an earlier one.");
	return s;
}

/* Check one key/value of the options object into opts. */
static void
parse_option(SyncOptions *opts, const char *key, JsonbValue *v)
{
	for (int i = 0; i < SYNC_OPTION_COUNT; i++)
	{
		const SyncOptionDef *d = &option_defs[i];

		if (strcmp(key, d->name) != 0)
			continue;
		opts->given[i] = true;
		if (d->kind == OPTION_BOOLEAN)
			opts->boolean[i] = option_bool(d, v);
		else if (d->kind == OPTION_INTEGER)
			opts->number[i] = option_int(d, v);
		else
			opts->text[i] = option_date(d, v);
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown sync option \"%s\"", key),
			 errdetail("%s", key),
			 errhint("Valid options: %s.", options_summary())));
}

/* Validate an options object (NULL means none). */
SyncOptions *
sync_options_parse(Jsonb *options)
{
	SyncOptions *opts = palloc0(sizeof(SyncOptions));
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (options == NULL)
		return opts;
	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sync options must be a JSON object, not %s",
						JB_ROOT_IS_SCALAR(options) ? "a scalar" : "an array"),
				 errhint("Pass an object such as '{\"full\": true}', or '{}' for none.")));
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			parse_option(opts, key, &v);
	}
	return opts;
}

/* The value of an integer option, or 0 when it was not given. */
int64
sync_options_number(const SyncOptions *opts, SyncOptionId id)
{
	return opts->given[id] ? opts->number[id] : 0;
}

/* Whether a boolean option was given as true. */
bool
sync_options_flag(const SyncOptions *opts, SyncOptionId id)
{
	return opts->given[id] && opts->boolean[id];
}

/* argv with the flags of the given options appended, in the table's order. */
List *
sync_options_append_flags(List *argv, const SyncOptions *opts)
{
	for (int i = 0; i < SYNC_OPTION_COUNT; i++)
	{
		const SyncOptionDef *d = &option_defs[i];

		/* an option without a flag is applied by the launcher (timeout, ignore_pause) */
		if (!opts->given[i] || d->flag == NULL)
			continue;
		if (d->kind == OPTION_BOOLEAN && opts->boolean[i])
			argv = lappend(argv, (char *) d->flag);
		else if (d->kind == OPTION_INTEGER)
			argv = list_concat(argv, list_make2((char *) d->flag, psprintf(INT64_FORMAT, opts->number[i])));
		else if (d->kind == OPTION_DATE)
			argv = list_concat(argv, list_make2((char *) d->flag, opts->text[i]));
	}
	return argv;
}

/* Append one option's description to a JSON array. */
static void
describe_option(StringInfo buf, const SyncOptionDef *d)
{
	static const char *const kinds[] = {"boolean", "integer", "date"};

	appendStringInfoString(buf, "{\"name\":");
	escape_json(buf, d->name);
	appendStringInfo(buf, ",\"type\":\"%s\"", kinds[d->kind]);
	if (d->kind == OPTION_INTEGER)
		appendStringInfo(buf, ",\"min\":" INT64_FORMAT ",\"max\":" INT64_FORMAT, d->min, d->max);
	if (d->unit)
		appendStringInfo(buf, ",\"unit\":\"%s\"", d->unit);
	appendStringInfoString(buf, ",\"flag\":");
	if (d->flag)
		escape_json(buf, d->flag);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ",\"label\":");
	escape_json(buf, d->label);
	appendStringInfoString(buf, ",\"help\":");
	escape_json(buf, d->help);
	appendStringInfoChar(buf, '}');
}

PG_FUNCTION_INFO_V1(crm_dashboard_sync_options);

/*
 * crm_dashboard.sync_options(): every sync option as JSON: name, type
 * (boolean, integer or date), min, max and unit, flag, label and help.
 */
Datum
crm_dashboard_sync_options(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < SYNC_OPTION_COUNT; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		describe_option(&buf, &option_defs[i]);
	}
	appendStringInfoChar(&buf, ']');
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}
