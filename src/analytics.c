/*
 * analytics.c
 *		Histograms of seconds (run durations, time queued) with 1 % relative
 *		accuracy, kept in the daily rollups of src/analytics.sql: the
 *		percentiles of any span of days come from merging its days'
 *		histograms, never from the raw history.
 *
 * A histogram is a bigint[] of (bucket, count) pairs, buckets ascending,
 * no zero counts.  Bucket b holds the values in (γ^(b-1), γ^b] with
 * γ = (1 + α) / (1 - α) and α = 0.01 (the logarithmic mapping of DDSketch);
 * its value, 2γ^b / (γ + 1), is within α of every value in it.  Values
 * under a millisecond share one bucket whose value is 0.  Counts may be
 * negative in a delta (a run that changed or was deleted is taken away).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "crm_dashboard.h"

#define SKETCH_ALPHA 0.01
#define SKETCH_MIN_VALUE 0.001
#define SKETCH_ZERO_BUCKET (-100000)
/* Buckets of a valid histogram lie within this (the zero bucket aside): 1 ms .. 10^300 s. */
#define SKETCH_MAX_BUCKET 40000

PG_FUNCTION_INFO_V1(crm_dashboard_sketch_agg_step);
PG_FUNCTION_INFO_V1(crm_dashboard_sketch_sum_step);
PG_FUNCTION_INFO_V1(crm_dashboard_sketch_final);
PG_FUNCTION_INFO_V1(crm_dashboard_sketch_merge);
PG_FUNCTION_INFO_V1(crm_dashboard_sketch_quantile);

/* A histogram being built: (bucket, count) pairs in no particular order. */
typedef struct Sketch
{
	int			n;
	int			cap;
	int64	   *buckets;
	int64	   *counts;
} Sketch;

static double
sketch_gamma(void)
{
	return (1.0 + SKETCH_ALPHA) / (1.0 - SKETCH_ALPHA);
}

/* The bucket of a value (seconds). */
static int64
bucket_of(double v)
{
	if (v < SKETCH_MIN_VALUE)
		return SKETCH_ZERO_BUCKET;
	return (int64) ceil(log(v) / log(sketch_gamma()));
}

/* The value a bucket stands for. */
static double
value_of(int64 b)
{
	double		g = sketch_gamma();

	if (b == SKETCH_ZERO_BUCKET)
		return 0.0;
	return 2.0 * pow(g, (double) b) / (g + 1.0);
}

static Sketch *
sketch_new(MemoryContext cxt)
{
	Sketch	   *s = MemoryContextAllocZero(cxt, sizeof(Sketch));

	s->cap = 16;
	s->buckets = MemoryContextAlloc(cxt, sizeof(int64) * s->cap);
	s->counts = MemoryContextAlloc(cxt, sizeof(int64) * s->cap);
	return s;
}

/* Add count to a bucket (the memory of s grows in its own context). */
static void
sketch_add(Sketch *s, int64 bucket, int64 count)
{
	for (int i = 0; i < s->n; i++)
		if (s->buckets[i] == bucket)
		{
			s->counts[i] += count;
			return;
		}
	if (s->n == s->cap)
	{
		s->cap *= 2;
		s->buckets = repalloc(s->buckets, sizeof(int64) * s->cap);
		s->counts = repalloc(s->counts, sizeof(int64) * s->cap);
	}
	s->buckets[s->n] = bucket;
	s->counts[s->n] = count;
	s->n++;
}

/* Raise the error for an array that is no histogram. */
static void
invalid_histogram(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid duration histogram: %s", why),
			 errhint("A histogram is a bigint[] of (bucket, count) pairs, as the rollups of crm_dashboard keep them.")));
}

/* Add every pair of a histogram array to s. */
static void
sketch_add_array(Sketch *s, ArrayType *a)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_ELEMTYPE(a) != INT8OID)
		invalid_histogram("its elements are not bigint");
	if (ARR_NDIM(a) > 1)
		invalid_histogram("it has more than one dimension");
	deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	if (n % 2 != 0)
		invalid_histogram("it has an odd number of elements");
	for (int i = 0; i < n; i += 2)
	{
		int64		b;

		if (nulls[i] || nulls[i + 1])
			invalid_histogram("it holds a NULL");
		b = DatumGetInt64(elems[i]);
		if (b != SKETCH_ZERO_BUCKET && (b < -SKETCH_MAX_BUCKET || b > SKETCH_MAX_BUCKET))
			invalid_histogram(psprintf("bucket " INT64_FORMAT " is out of range", b));
		sketch_add(s, b, DatumGetInt64(elems[i + 1]));
	}
}

/* Order pairs by bucket, for qsort. */
typedef struct Pair
{
	int64		bucket;
	int64		count;
} Pair;

static int
pair_cmp(const void *a, const void *b)
{
	int64		x = ((const Pair *) a)->bucket;
	int64		y = ((const Pair *) b)->bucket;

	return x < y ? -1 : x > y;
}

/* The pairs of s with a count, buckets ascending; *n is how many. */
static Pair *
sketch_sorted(const Sketch *s, int *n)
{
	Pair	   *p = palloc(sizeof(Pair) * Max(s->n, 1));

	*n = 0;
	for (int i = 0; i < s->n; i++)
		if (s->counts[i] != 0)
		{
			p[*n].bucket = s->buckets[i];
			p[*n].count = s->counts[i];
			(*n)++;
		}
	qsort(p, *n, sizeof(Pair), pair_cmp);
	return p;
}

/* s as a histogram array. */
static ArrayType *
sketch_array(const Sketch *s)
{
	int			n;
	Pair	   *p = sketch_sorted(s, &n);
	Datum	   *elems = palloc(sizeof(Datum) * Max(2 * n, 1));

	for (int i = 0; i < n; i++)
	{
		elems[2 * i] = Int64GetDatum(p[i].bucket);
		elems[2 * i + 1] = Int64GetDatum(p[i].count);
	}
	return construct_array(elems, 2 * n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* The state of an aggregate call, allocated in its aggregate context. */
static Sketch *
agg_state(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_dashboard: histogram aggregate called outside an aggregate");
	if (!PG_ARGISNULL(0))
		return (Sketch *) PG_GETARG_POINTER(0);
	return sketch_new(aggcxt);
}

/*
 * crm_dashboard.sketch_agg(seconds, weight): transition.  NULL seconds (a
 * run without a duration), NaN and infinities count nowhere.
 */
Datum
crm_dashboard_sketch_agg_step(PG_FUNCTION_ARGS)
{
	Sketch	   *s = agg_state(fcinfo);

	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2))
	{
		double		v = PG_GETARG_FLOAT8(1);

		if (!isnan(v) && !isinf(v))
			sketch_add(s, bucket_of(v), PG_GETARG_INT32(2));
	}
	PG_RETURN_POINTER(s);
}

/* crm_dashboard.sketch_sum(histogram): transition; a NULL histogram is empty. */
Datum
crm_dashboard_sketch_sum_step(PG_FUNCTION_ARGS)
{
	Sketch	   *s = agg_state(fcinfo);

	if (!PG_ARGISNULL(1))
		sketch_add_array(s, PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_POINTER(s);
}

/* Final function of both aggregates: the histogram ('{}' when empty). */
Datum
crm_dashboard_sketch_final(PG_FUNCTION_ARGS)
{
	Sketch		empty = {0, 0, NULL, NULL};

	if (PG_ARGISNULL(0))
		PG_RETURN_ARRAYTYPE_P(sketch_array(&empty));
	PG_RETURN_ARRAYTYPE_P(sketch_array((Sketch *) PG_GETARG_POINTER(0)));
}

/* crm_dashboard.sketch_merge(a, b): the sum of two histograms (NULL is empty). */
Datum
crm_dashboard_sketch_merge(PG_FUNCTION_ARGS)
{
	Sketch	   *s = sketch_new(CurrentMemoryContext);

	if (!PG_ARGISNULL(0))
		sketch_add_array(s, PG_GETARG_ARRAYTYPE_P(0));
	if (!PG_ARGISNULL(1))
		sketch_add_array(s, PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_ARRAYTYPE_P(sketch_array(s));
}

/*
 * crm_dashboard.sketch_quantile(histogram, q): the value of rank
 * ceil(q * n) among the n values counted (what percentile_disc(q) gives,
 * within 1 %), NULL when none is counted.
 */
Datum
crm_dashboard_sketch_quantile(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	double		q = PG_GETARG_FLOAT8(1);
	Sketch	   *s = sketch_new(CurrentMemoryContext);
	Pair	   *p;
	int			n;
	int64		total = 0;
	int64		rank;
	int64		seen = 0;

	if (isnan(q) || q < 0.0 || q > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantile %g is not between 0 and 1", q),
				 errhint("The median is 0.5, the 95th percentile 0.95.")));
	sketch_add_array(s, a);
	p = sketch_sorted(s, &n);
	for (int i = 0; i < n; i++)
		if (p[i].count > 0)
			total += p[i].count;
	if (total == 0)
		PG_RETURN_NULL();
	rank = Max((int64) ceil(q * (double) total - 1e-9), 1);
	for (int i = 0; i < n; i++)
	{
		if (p[i].count <= 0)
			continue;
		seen += p[i].count;
		if (seen >= rank)
			PG_RETURN_FLOAT8(value_of(p[i].bucket));
	}
	PG_RETURN_FLOAT8(value_of(p[n - 1].bucket));
}
