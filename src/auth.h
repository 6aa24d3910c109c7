/*
 * auth.h
 *		Authentication shared by crm_api.login, the bundled HTTP server and
 *		a real PostgREST: the token settings, and who the current request
 *		acts for.
 *
 * Modules:
 *	auth.c				settings: token secret and lifetime, request user and address
 *	auth_jwt.c			HS256 tokens
 *	auth_password.c		passwords and login
 *	auth_throttle.c		failed-login limits
 */
#ifndef CRM_DASHBOARD_AUTH_H
#define CRM_DASHBOARD_AUTH_H

#include "postgres.h"

/* Settings names the HTTP server sets for each request it runs. */
#define AUTH_REQUEST_USER_SETTING "crm_dashboard.request_user"
#define AUTH_CLIENT_ADDRESS_SETTING "crm_dashboard.client_address"

/* auth.c */
extern void AuthInit(void);
extern const char *auth_jwt_key(void);
extern int	auth_jwt_expiry(void);
extern const char *auth_request_user(void);
extern const char *auth_client_address(void);

/* auth_throttle.c */
extern void AuthThrottleInit(void);
extern void auth_throttle_check(const char *username, const char *address);
extern void auth_throttle_record(const char *username, const char *address, bool success);

#endif							/* CRM_DASHBOARD_AUTH_H */
