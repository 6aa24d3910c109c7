-- Every regression test runs after this one.
CREATE EXTENSION crm_dashboard;
