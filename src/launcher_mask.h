/*
 * launcher_mask.h
 *		Masking a run's secrets (the values of the registry environment
 *		variables named in sync_command.secret_names) with "***" in what the
 *		launcher keeps of the run's output.
 *
 * Plain C only (no PostgreSQL headers), so that the fuzz target can check
 * it together with the progress parser.
 *
 * Only values of at least SECRET_MIN_LEN bytes are masked: masking a
 * shorter one would replace every occurrence of a common short string
 * ("1", "yes", "abc") all over the log while protecting next to nothing (a
 * 3-byte secret is guessed in 16 million tries), and it lets masking work in
 * place, as "***" is never longer than what it replaces.  A value spanning
 * several lines (a PEM key) is masked line by line.
 */
#ifndef CRM_DASHBOARD_LAUNCHER_MASK_H
#define CRM_DASHBOARD_LAUNCHER_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define SECRET_MIN_LEN 4
#define SECRET_MASK "***"

/* The secrets of one run; the values belong to the caller. */
typedef struct SecretSet
{
	int			n;
	int			cap;			/* room in values and lens */
	const char **values;		/* not NUL-terminated; longest first after secrets_finish */
	size_t	   *lens;
	size_t		longest;		/* 0 when there is none */
	bool		any_star;		/* a value holds '*': masking may uncover another */
} SecretSet;

extern int	secrets_pieces(const char *value, size_t len);
extern void secrets_add(SecretSet *s, const char *value, size_t len);
extern void secrets_finish(SecretSet *s);
extern size_t secrets_mask(const SecretSet *s, char *buf, size_t len);
extern bool secrets_mask_json(const SecretSet *s, cJSON *item);

#endif							/* CRM_DASHBOARD_LAUNCHER_MASK_H */
