/*
 * delivery_hosts.c
 *		Which addresses alert notifications may be sent to, and the check
 *		of a channel's URL.
 *
 * crm_dashboard.delivery_allowed_hosts lists what may be called: the word
 * "public" (every address on the public internet), networks in CIDR form
 * ("10.1.2.0/24", "127.0.0.1", "fd00::/8") and host names ("alerts.internal",
 * "*.example.com").  An address is allowed when it lies in a listed
 * network, when the URL's host is listed, or when "public" is listed and
 * the address is public; loopback, private, link-local (169.254.169.254,
 * the cloud metadata service), shared, multicast and reserved addresses are
 * never public.  The default is "public".
 *
 * The check runs on the address libcurl is about to connect to (its
 * open-socket callback, delivery_transfer.c), after its own resolution: a
 * name that resolves to an allowed address when the channel is created
 * and to an internal one later (DNS rebinding) is refused then.  Creating
 * a channel also resolves its host once, so that a bad target is refused
 * at once with a clear error.
 *
 * The callback runs inside libcurl: delivery_address_allowed() is plain C
 * over the parsed setting and never throws.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "crm_dashboard.h"
#include "delivery.h"

#define ALLOW_MAX_ENTRIES 64
#define ALLOW_HOST_MAX 254

PG_FUNCTION_INFO_V1(crm_dashboard_check_delivery_url);

static bool curl_ready = false;

/* Initialise libcurl once per process (not thread-safe: call before any transfer). */
void
delivery_curl_init(void)
{
	if (curl_ready)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "crm_dashboard: could not initialise libcurl");
	curl_ready = true;
}

/* A network: an IPv4 address is kept as an IPv4-mapped IPv6 address. */
typedef struct AllowNet
{
	uint8		addr[16];
	int			prefix;			/* bits, of the 128 */
} AllowNet;

/* The parsed setting (a GUC "extra": one malloc'd block). */
typedef struct AllowList
{
	bool		public_ok;
	int			nnets;
	int			nhosts;
	AllowNet	nets[ALLOW_MAX_ENTRIES];
	char		hosts[ALLOW_MAX_ENTRIES][ALLOW_HOST_MAX + 1];	/* lower case; "*.x" for a domain */
} AllowList;

static char *allowed_hosts_setting = NULL;
static AllowList *allow = NULL;

/* The 16-byte form of an address: IPv6 as it is, IPv4 mapped (::ffff:a.b.c.d). */
static void
address_bytes(const struct sockaddr *sa, uint8 out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET6)
		memcpy(out, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
	else
	{
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *) sa)->sin_addr, 4);
	}
}

/* Whether the first bits bits of a and b agree. */
static bool
prefix_matches(const uint8 *a, const uint8 *b, int bits)
{
	int			whole = bits / 8;
	int			rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

/* Whether the 16-byte address lies in IPv4 network a.b.c.d/bits. */
static bool
in_v4(const uint8 *addr, uint8 a, uint8 b, uint8 c, uint8 d, int bits)
{
	static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8		net[4] = {a, b, c, d};

	return memcmp(addr, mapped, 12) == 0 && prefix_matches(addr + 12, net, bits);
}

/* Whether the 16-byte address lies in the IPv6 network of the first bytes of net, /bits. */
static bool
in_v6(const uint8 *addr, const uint8 *net, int bits)
{
	return prefix_matches(addr, net, bits);
}

/*
 * Whether an address is on the public internet: none of the special-use
 * ranges of RFC 6890 and its successors (this host, private, shared, loopback,
 * link-local, documentation, benchmarking, multicast, reserved), in either
 * family.  NAT64 addresses embed an IPv4 one, which decides.
 */
static bool
address_is_public(const uint8 *addr)
{
	static const uint8 v6_unspecified[16] = {0};
	static const uint8 v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	static const uint8 nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8 ula[1] = {0xfc};
	static const uint8 link_local[2] = {0xfe, 0x80};
	static const uint8 site_local[2] = {0xfe, 0xc0};
	static const uint8 multicast[1] = {0xff};
	static const uint8 documentation[4] = {0x20, 0x01, 0x0d, 0xb8};
	static const uint8 discard[8] = {0x01, 0x00, 0, 0, 0, 0, 0, 0};
	static const uint8 v4_compatible[12] = {0};
	uint8		v4[16];

	if (memcmp(addr, nat64, 12) == 0)
	{
		memset(v4, 0, 10);
		v4[10] = v4[11] = 0xff;
		memcpy(v4 + 12, addr + 12, 4);
		addr = v4;
	}
	if (in_v4(addr, 0, 0, 0, 0, 0))
		return !(in_v4(addr, 0, 0, 0, 0, 8) || in_v4(addr, 10, 0, 0, 0, 8) ||
				 in_v4(addr, 100, 64, 0, 0, 10) || in_v4(addr, 127, 0, 0, 0, 8) ||
				 in_v4(addr, 169, 254, 0, 0, 16) || in_v4(addr, 172, 16, 0, 0, 12) ||
				 in_v4(addr, 192, 0, 0, 0, 24) || in_v4(addr, 192, 0, 2, 0, 24) ||
				 in_v4(addr, 192, 88, 99, 0, 24) || in_v4(addr, 192, 168, 0, 0, 16) ||
				 in_v4(addr, 198, 18, 0, 0, 15) || in_v4(addr, 198, 51, 100, 0, 24) ||
				 in_v4(addr, 203, 0, 113, 0, 24) || in_v4(addr, 224, 0, 0, 0, 4) ||
				 in_v4(addr, 240, 0, 0, 0, 4));
	return !(memcmp(addr, v6_unspecified, 16) == 0 || memcmp(addr, v6_loopback, 16) == 0 ||
			 in_v6(addr, v4_compatible, 96) || in_v6(addr, ula, 7) || in_v6(addr, link_local, 10) ||
			 in_v6(addr, site_local, 10) || in_v6(addr, multicast, 8) ||
			 in_v6(addr, documentation, 32) || in_v6(addr, discard, 64));
}

/* Whether host matches a listed name: exactly, or under a listed "*.domain". */
static bool
host_listed(const AllowList *list, const char *host)
{
	size_t		len = host ? strlen(host) : 0;

	for (int i = 0; i < list->nhosts; i++)
	{
		const char *entry = list->hosts[i];

		if (entry[0] == '*')
		{
			size_t		dlen = strlen(entry + 1);	/* ".example.com" */

			if (len > dlen && pg_strcasecmp(host + len - dlen, entry + 1) == 0)
				return true;
		}
		else if (pg_strcasecmp(host, entry) == 0)
			return true;
	}
	return false;
}

/*
 * Whether a notification for host may connect to addr (see the file
 * header); when not, why says so.  Plain C: runs inside libcurl.
 */
bool
delivery_address_allowed(const char *host, const struct sockaddr *addr, char *why, size_t whylen)
{
	uint8		bytes[16];
	char		text[INET6_ADDRSTRLEN] = "?";
	const AllowList *list = allow;

	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
	{
		snprintf(why, whylen, "host \"%s\": only IPv4 and IPv6 addresses may be called", host ? host : "");
		return false;
	}
	address_bytes(addr, bytes);
	if (list == NULL)
		return address_is_public(bytes);
	if (host && host_listed(list, host))
		return true;
	for (int i = 0; i < list->nnets; i++)
		if (prefix_matches(bytes, list->nets[i].addr, list->nets[i].prefix))
			return true;
	if (list->public_ok && address_is_public(bytes))
		return true;
	if (addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *) addr)->sin_addr, text, sizeof(text));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) addr)->sin6_addr, text, sizeof(text));
	snprintf(why, whylen, "address %s of host \"%s\" is not allowed by crm_dashboard.delivery_allowed_hosts",
			 text, host ? host : "");
	return false;
}

/* Parse "address[/prefix]" into net; false when it is not one. */
static bool
parse_network(const char *entry, AllowNet *net)
{
	char		buf[INET6_ADDRSTRLEN + 8];
	char	   *slash;
	struct in_addr v4;
	struct in6_addr v6;
	int			max;

	if (strlen(entry) >= sizeof(buf))
		return false;
	strcpy(buf, entry);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(net->addr, 0, 16);
	if (inet_pton(AF_INET, buf, &v4) == 1)
	{
		net->addr[10] = net->addr[11] = 0xff;
		memcpy(net->addr + 12, &v4, 4);
		max = 32;
	}
	else if (inet_pton(AF_INET6, buf, &v6) == 1)
	{
		memcpy(net->addr, &v6, 16);
		max = 128;
	}
	else
		return false;
	net->prefix = max;
	if (slash)
	{
		char	   *end;
		long		bits = strtol(slash + 1, &end, 10);

		if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > max)
			return false;
		net->prefix = (int) bits;
	}
	/* an IPv4 network's bits count after the 96 of the mapping */
	if (max == 32)
		net->prefix += 96;
	return true;
}

/* Whether entry is a host name, or "*." and a domain. */
static bool
valid_host_entry(const char *entry)
{
	const char *p = entry;
	bool		label_start = true;

	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	if (*p == '\0' || strlen(entry) > ALLOW_HOST_MAX)
		return false;
	for (; *p; p++)
	{
		if (*p == '.')
		{
			if (label_start)
				return false;
			label_start = true;
			continue;
		}
		if (!isalnum((unsigned char) *p) && !(*p == '-' && !label_start) && *p != '_')
			return false;
		label_start = false;
	}
	return !label_start;
}

/* Every entry is "public", a network or a host name; parse them into the GUC's extra. */
static bool
check_allowed_hosts(char **newval, void **extra, GucSource source)
{
	AllowList  *list = calloc(1, sizeof(AllowList));
	const char *p = *newval ? *newval : "";

	if (list == NULL)
		return false;
	while (*p)
	{
		char		entry[ALLOW_HOST_MAX + 8];
		size_t		len;

		while (*p == ',' || isspace((unsigned char) *p))
			p++;
		len = strcspn(p, ", \t\n");
		if (len == 0)
			break;
		if (len >= sizeof(entry) || list->nnets + list->nhosts >= ALLOW_MAX_ENTRIES)
		{
			free(list);
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errmsg(len >= sizeof(entry) ? "an entry of crm_dashboard.delivery_allowed_hosts is too long"
							 : "crm_dashboard.delivery_allowed_hosts has more than %d entries", ALLOW_MAX_ENTRIES);
			return false;
		}
		for (size_t i = 0; i < len; i++)
			entry[i] = pg_tolower((unsigned char) p[i]);
		entry[len] = '\0';
		p += len;
		if (strcmp(entry, "public") == 0)
			list->public_ok = true;
		else if (parse_network(entry, &list->nets[list->nnets]))
			list->nnets++;
		else if (valid_host_entry(entry))
			strlcpy(list->hosts[list->nhosts++], entry, ALLOW_HOST_MAX + 1);
		else
		{
			free(list);
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errmsg("invalid entry \"%s\" in crm_dashboard.delivery_allowed_hosts", entry);
			GUC_check_errhint("List \"public\", networks such as 10.1.2.0/24 or 127.0.0.1, and host names "
							  "such as alerts.internal or *.example.com, separated by commas.");
			return false;
		}
	}
	*extra = list;
	return true;
}

/* Keep the parsed list. */
static void
assign_allowed_hosts(const char *newval, void *extra)
{
	allow = extra;
}

/* Define crm_dashboard.delivery_allowed_hosts (called from DeliveryInit). */
void
delivery_hosts_define_setting(void)
{
	DefineCustomStringVariable("crm_dashboard.delivery_allowed_hosts",
							   "Hosts and networks alert notifications may be sent to.",
							   "Comma-separated: \"public\" (any public address), networks (10.1.2.0/24, "
							   "127.0.0.1, fd00::/8) and host names (alerts.internal, *.example.com).  "
							   "Checked on every connection, after resolution.",
							   &allowed_hosts_setting, "public", PGC_SIGHUP, 0,
							   check_allowed_hosts, assign_allowed_hosts, NULL);
}

/* Raise invalid_parameter_value about a channel's URL (never quoting it whole: it may hold a secret). */
static void
url_error(const char *kind, const char *message, const char *hint) pg_attribute_noreturn();

static void
url_error(const char *kind, const char *message, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message),
			 errdetail("url"),
			 errhint("%s", hint)));
}

/* The schemes a kind of channel may use, as a comma-separated list. */
static const char *
kind_schemes(const char *kind)
{
	if (strcmp(kind, "email") == 0)
		return "smtp,smtps";
	if (strcmp(kind, "webhook") == 0 || strcmp(kind, "slack") == 0)
		return "http,https";
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown channel kind \"%s\"", kind),
			 errdetail("kind"),
			 errhint("A channel is a webhook, slack or email.")));
	return NULL;				/* not reached */
}

/* Whether scheme is in the comma-separated list. */
static bool
scheme_in(const char *scheme, const char *list)
{
	size_t		len = strlen(scheme);

	for (const char *p = list; *p;)
	{
		size_t		n = strcspn(p, ",");

		if (n == len && pg_strncasecmp(p, scheme, n) == 0)
			return true;
		p += n + (p[n] == ',' ? 1 : 0);
	}
	return false;
}

/*
 * Refuse a host none of whose resolved addresses may be called, or that
 * resolves to any address that may not (a name that resolves both ways is
 * a way around the list).  A host that does not resolve now is accepted
 * with a notice: every delivery checks it again.
 */
static void
check_host_addresses(const char *kind, const char *host, const char *port)
{
	struct addrinfo hints = {0};
	struct addrinfo *res = NULL;
	char		why[DELIVERY_WHY_MAX];
	int			rc;

	if (allow != NULL && host_listed(allow, host))
		return;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
	{
		ereport(NOTICE,
				(errmsg("host \"%s\" of the %s URL does not resolve now: %s", host, kind, gai_strerror(rc)),
				 errhint("Every delivery resolves it again and checks its addresses.")));
		return;
	}
	for (struct addrinfo *a = res; a; a = a->ai_next)
	{
		if (!delivery_address_allowed(host, a->ai_addr, why, sizeof(why)))
		{
			freeaddrinfo(res);
			url_error(kind, why,
					  "List the host or its network in crm_dashboard.delivery_allowed_hosts to allow it "
					  "(internal addresses are refused unless listed).");
		}
	}
	freeaddrinfo(res);
}

/* The parts of a channel's URL that are checked, as palloc'd strings (NULL when absent). */
typedef struct DeliveryUrl
{
	char	   *scheme;
	char	   *host;			/* IPv6 literals without their brackets */
	char	   *port;			/* the scheme's default when none is given */
	char	   *normal;			/* the whole URL as libcurl writes it */
} DeliveryUrl;

/* One part of a parsed URL, copied out of libcurl's memory (NULL when absent). */
static char *
url_part(CURLU *u, CURLUPart part, unsigned int flags)
{
	char	   *value = NULL;
	char	   *volatile copy = NULL;

	if (curl_url_get(u, part, &value, flags) != CURLUE_OK || value == NULL)
		return NULL;
	PG_TRY();
	{
		copy = pstrdup(value);
	}
	PG_FINALLY();
	{
		curl_free(value);
	}
	PG_END_TRY();
	return copy;
}

/* An IPv6 literal comes bracketed in a URL; name resolution wants it bare. */
static char *
unbracketed(char *host)
{
	size_t		len = host ? strlen(host) : 0;

	if (len > 2 && host[0] == '[' && host[len - 1] == ']')
		return pnstrdup(host + 1, len - 2);
	return host;
}

/* Parse url with libcurl, the parser that will use it, or refuse it as invalid. */
static DeliveryUrl *
parse_delivery_url(const char *kind, const char *url)
{
	DeliveryUrl *parts = palloc0(sizeof(DeliveryUrl));
	CURLU	   *u;

	delivery_curl_init();
	u = curl_url();
	if (u == NULL)
		elog(ERROR, "crm_dashboard: out of memory parsing a URL");
	PG_TRY();
	{
		CURLUcode	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);

		if (rc != CURLUE_OK)
			url_error(kind, psprintf("invalid %s URL: %s", kind, curl_url_strerror(rc)),
					  strcmp(kind, "email") == 0
					  ? "Give the SMTP server as smtp://host[:port] (STARTTLS when offered) or smtps://host[:port]; the URL is not repeated here because it may hold a secret."
					  : "Give an absolute http or https URL, e.g. https://alerts.example.com/hook; the URL is not repeated here because it may hold a secret.");
		parts->scheme = url_part(u, CURLUPART_SCHEME, 0);
		parts->host = unbracketed(url_part(u, CURLUPART_HOST, 0));
		parts->port = url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT);
		parts->normal = url_part(u, CURLUPART_URL, 0);
	}
	PG_FINALLY();
	{
		curl_url_cleanup(u);
	}
	PG_END_TRY();
	return parts;
}

/*
 * Refuse a URL without a scheme the kind may use, or without a host.  The
 * scheme comes first: file:///etc/passwd is refused for being file, not for
 * having no host.
 */
static void
check_scheme_and_host(const char *kind, const DeliveryUrl *parts)
{
	bool		email = strcmp(kind, "email") == 0;

	if (parts->scheme == NULL)
		url_error(kind, psprintf("the %s URL has no scheme", kind),
				  "Give an absolute URL such as https://alerts.example.com/hook.");
	if (!scheme_in(parts->scheme, kind_schemes(kind)))
		url_error(kind, psprintf("URL scheme \"%s\" is not allowed for a%s %s channel",
								 parts->scheme, email ? "n" : "", kind),
				  email ? "Use smtp:// (STARTTLS when offered) or smtps://." : "Use http:// or https://.");
	if (parts->host == NULL || parts->host[0] == '\0')
		url_error(kind, psprintf("the %s URL has no host", kind),
				  "Give an absolute URL such as https://alerts.example.com/hook.");
}

/*
 * crm_dashboard.check_delivery_url(kind, url): the URL of a channel of kind,
 * normalised, or invalid_parameter_value: an absolute URL with a host, a
 * scheme the kind may use (http or https; smtp or smtps for email), and a
 * host whose addresses crm_dashboard.delivery_allowed_hosts allows.  Errors
 * name the scheme and host, never the whole URL.
 */
Datum
crm_dashboard_check_delivery_url(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(1));
	DeliveryUrl *parts;

	(void) kind_schemes(kind);	/* an unknown kind is refused before its URL is read */
	if (strlen(url) > 2048)
		url_error(kind, psprintf("the %s URL is too long (%zu characters)", kind, strlen(url)),
				  "Keep it to 2048 characters.");
	parts = parse_delivery_url(kind, url);
	check_scheme_and_host(kind, parts);
	check_host_addresses(kind, parts->host, parts->port);
	PG_RETURN_TEXT_P(cstring_to_text(parts->normal ? parts->normal : url));
}
