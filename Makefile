# crm_dashboard: PGXS build.  The version lives in crm_dashboard.control only
# (default_version); the install script's name and the C code
# (-DEXTVERSION, which the library reports) derive from it.
EXTENSION  = crm_dashboard
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = crm_dashboard
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from one SQL file per concern, each beside
# the C file of the same concern, in the order data flows: tables, then
# discovery, paging, sync requests, the launcher's queue (policies, pauses,
# retries, the claim step), announcements, schedules, history (whose views
# read all of those), data-quality checks, the log store, retention and
# analytics, alerts and their delivery, authentication, the HTTP surface and
# capabilities.
EXTENSION_PARTS = src/schema.sql src/discovery.sql src/paging.sql \
                  src/sync_request.sql src/launcher.sql src/announce.sql src/schedules.sql \
                  src/history.sql src/quality.sql src/logs.sql src/retention.sql src/analytics.sql \
                  src/alerts.sql src/delivery.sql src/metrics.sql src/auth.sql src/http.sql src/capabilities.sql
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA       = $(wildcard updates/$(EXTENSION)--*--*.sql)

# pg_regress runs in a temporary instance that preloads the library (as
# pg_cron's does), so the suite covers the workers' SQL surface too.
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql \
               --temp-instance=$(or $(REGRESS_INSTANCE),./tmp_check) --temp-config=test/regress.conf

PG_CONFIG ?= pg_config
# Warnings are errors; scripts/install-dev relaxes this so one developer's
# warning does not block everyone else's build.
WERROR ?= -Werror
PG_CPPFLAGS = -std=c11 -D_GNU_SOURCE -DEXTVERSION=\"$(EXTVERSION)\" -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers $(WERROR)
# libpq for the HTTP workers' connection pool; its headers are searched after
# the server's, so that client copies never shadow server ones.
PG_CPPFLAGS += -idirafter $(shell $(PG_CONFIG) --includedir)
SHLIB_LINK  = -lcjson -lmicrohttpd -lpq -lxlsxwriter $(shell pkg-config --libs libcurl)
PG_CPPFLAGS += $(shell pkg-config --cflags libcurl)

EXTRA_CLEAN = $(EXTENSION)--$(EXTVERSION).sql

# No LLVM bitcode: it doubles build time and the JIT gains nothing here.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Objects depend on every header: cheap, and a changed struct never goes unnoticed.
$(OBJS): $(wildcard src/*.h) $(EXTENSION).control

$(EXTENSION)--$(EXTVERSION).sql: $(EXTENSION_PARTS) $(EXTENSION).control Makefile
	{ printf '%s\n' '-- crm_dashboard $(EXTVERSION): generated from src/*.sql; edit those files.' \
	  '\echo Use "CREATE EXTENSION crm_dashboard" to load this file. \quit'; \
	  for f in $(EXTENSION_PARTS); do echo; echo "-- ---- $$f"; cat $$f; done; } > $@

install: install-ui install-python
install-ui:
	rm -rf '$(DESTDIR)$(datadir)/extension/crm_dashboard_ui'
	$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/crm_dashboard_ui'
	cp -R ui/. '$(DESTDIR)$(datadir)/extension/crm_dashboard_ui/'

# The progress helper for Python sync commands (Django management commands):
# put this directory on their PYTHONPATH.
install-python:
	$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/crm_dashboard_python'
	$(INSTALL_DATA) src/python/crm_dashboard_progress.py '$(DESTDIR)$(datadir)/extension/crm_dashboard_python/'

.PHONY: install-ui install-python
