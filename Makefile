# crm_dashboard: PGXS build.  The version lives here only; the control file,
# the install script name and the C code (-DEXTVERSION) all derive from it.
EXTENSION  = crm_dashboard
EXTVERSION = 1.0.0

MODULE_big = crm_dashboard
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from one file per concern (extension/NN_*.sql).
EXTENSION_PARTS = $(sort $(wildcard extension/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION).control
DATA       = $(wildcard updates/$(EXTENSION)--*--*.sql)

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql

PG_CONFIG ?= pg_config
# Warnings are errors; test/install-dev relaxes this so one developer's
# warning does not block everyone else's build.
WERROR ?= -Werror
PG_CPPFLAGS = -std=c11 -D_GNU_SOURCE -DEXTVERSION=\"$(EXTVERSION)\" -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers $(WERROR)
SHLIB_LINK  = -lcjson -lmicrohttpd

# Programs beside the extension: the CRM sync simulator used by the demo and tests.
TOOLS = $(patsubst %.c,%,$(wildcard tools/*.c))
EXTRA_CLEAN = $(TOOLS) $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION).control

# No LLVM bitcode: it doubles build time and the JIT gains nothing here.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Objects depend on every header: cheap, and a changed struct never goes unnoticed.
$(OBJS): $(wildcard src/*.h)

all: $(TOOLS)

$(EXTENSION)--$(EXTVERSION).sql: $(EXTENSION_PARTS) Makefile
	{ printf '%s\n' '-- crm_dashboard $(EXTVERSION): generated from extension/*.sql; edit those files.' \
	  '\echo Use "CREATE EXTENSION crm_dashboard" to load this file. \quit'; \
	  for f in $(EXTENSION_PARTS); do echo; echo "-- ---- $$f"; cat $$f; done; } > $@

$(EXTENSION).control: $(EXTENSION).control.in Makefile
	sed 's/@EXTVERSION@/$(EXTVERSION)/' $< > $@

tools/%: tools/%.c
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra $(WERROR) -I$(shell $(PG_CONFIG) --includedir) -o $@ $< -L$(shell $(PG_CONFIG) --libdir) -lpq -lcjson

install: install-tools install-ui
install-tools: $(TOOLS)
	$(if $(TOOLS),$(INSTALL_PROGRAM) $(TOOLS) '$(DESTDIR)$(bindir)/')
install-ui:
	rm -rf '$(DESTDIR)$(datadir)/extension/crm_dashboard_ui'
	$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/crm_dashboard_ui'
	cp -R ui/. '$(DESTDIR)$(datadir)/extension/crm_dashboard_ui/'

.PHONY: install-tools install-ui
