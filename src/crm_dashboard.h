/*
 * crm_dashboard.h
 *		Declarations shared by the modules of crm_dashboard.
 */
#ifndef CRM_DASHBOARD_H
#define CRM_DASHBOARD_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

/* A CRM model: a table named <prefix><model> in a discovery schema. */
typedef struct CrmModel
{
	char	   *crm;			/* crm_source.name, e.g. "hubspot" */
	char	   *model;			/* e.g. "contact" */
	Oid			relid;
	char	   *schema;			/* e.g. "ingestion" */
	char	   *table;			/* e.g. "hubspot_contact" */
	double		reltuples;		/* estimated rows; -1 when unknown */
	char		relkind;
} CrmModel;

/* discovery.c */
extern void DiscoveryInit(void);
extern void crm_check_crm(const char *crm);
extern CrmModel *crm_resolve_model(const char *crm, const char *model);
extern List *crm_list_models(const char *crm);
extern char *crm_qualified_table(const CrmModel *m);
extern const char *crm_name_problem(const char *name);
extern void crm_check_argv_name(const CrmModel *m);
extern void crm_models_as_arrays(List *models, Datum *arrays);
extern const char *const crm_models_unnest;
extern const char *const crm_searchable_type_condition;

/* sync_request.c */
extern bool crm_valid_via(const char *via);

/* history.c */
extern int64 crm_exact_row_count(const CrmModel *m);

/* util_shmem.c */
typedef void (*CrmShmemInit) (void *area);
extern void crm_shmem_register(const char *name, Size size, int locks, void **pointer,
							   CrmShmemInit init);

/* util_args.c */
extern bool crm_arg_given(FunctionCallInfo fcinfo, int n);
extern void crm_arg_null_error(const char *name) pg_attribute_noreturn();
extern char *crm_arg_text(FunctionCallInfo fcinfo, int n, const char *name);
extern char *crm_arg_text_or_null(FunctionCallInfo fcinfo, int n);
extern bool crm_arg_bool_or(FunctionCallInfo fcinfo, int n, bool dflt);

/* quality.c */
extern void QualityInit(void);

/* util_input.c */
struct JsonbValue;
extern int	crm_input_values(int n, char **texts, const Oid *types, Datum *values, char **message);
extern const char *crm_json_type_name(const struct JsonbValue *v);

/* util_local.c */
extern char *crm_local_socket_directory(void);
extern int	crm_local_port(void);

/* util_worker.c */
extern void crm_register_worker(const char *function, const char *name, const char *type,
								bool during_recovery, int arg);

/* util_spi.c */
extern int	crm_spi_run(const char *sql, int nargs, Oid *types, Datum *values,
						const char *nulls, bool read_only, long tcount);
extern uint64 crm_spi_execute(const char *sql, int nargs, Oid *types, Datum *values,
							  const char *nulls, bool read_only, long tcount, int expected);
extern HeapTuple crm_spi_first_row(const char *sql, int nargs, Oid *types, Datum *values,
								   const char *nulls, bool read_only, TupleDesc *desc);

/* util_srf.c */
extern void crm_materialize_query(FunctionCallInfo fcinfo, const char *sql, int nargs,
								  Oid *argtypes, Datum *values, const char *nulls);

/* Longest identifier-like argument we accept before even looking it up. */
#define CRM_MAX_NAME_LEN 63

#endif							/* CRM_DASHBOARD_H */
