/*
 * crm_dashboard.h
 *		Declarations shared by the modules of crm_dashboard.
 */
#ifndef CRM_DASHBOARD_H
#define CRM_DASHBOARD_H

#include "postgres.h"
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

/* Longest identifier-like argument we accept before even looking it up. */
#define CRM_MAX_NAME_LEN 63

#endif							/* CRM_DASHBOARD_H */
