-- crm_dashboard 1.0.1 -> 1.1.0: wave 2.
\echo Use "ALTER EXTENSION crm_dashboard UPDATE TO '1.1.0'" to load this file. \quit
