/* Whether an API URL names this host: the CLI only falls back to the local admin key
 * (DATA_DIR/admin.key) for such a URL, so the key never travels to another machine. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

/* Whether s[0..len) is a port: 1 to 5 digits. */
static bool port_ok(const char *s, size_t len)
{
	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Whether host (no brackets, no port) is 127.0.0.0/8, ::1 or localhost. Only the plain forms
 * count: a dotted quad, a bracketed IPv6 address without a zone, the exact name. */
static bool host_is_loopback(const char *host, size_t len, bool bracketed)
{
	char h[INET6_ADDRSTRLEN + 1];
	if (len == 0 || len >= sizeof(h))
		return false;
	memcpy(h, host, len);
	h[len] = '\0';
	if (bracketed) {
		struct in6_addr a6;
		return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	struct in_addr a4;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcasecmp(h, "localhost") == 0;
}

bool cli_url_is_loopback(const char *url)
{
	if (!url)
		return false;
	const char *auth = strstr(url, "://");
	if (auth) {
		size_t slen = (size_t)(auth - url);
		if (!((slen == 4 && strncasecmp(url, "http", 4) == 0) ||
		      (slen == 5 && strncasecmp(url, "https", 5) == 0)))
			return false;
		auth += 3;
	} else {
		auth = url; /* curl guesses http:// */
	}
	size_t alen = strcspn(auth, "/?#");
	/* user info ("a@b") is refused outright: parsers disagree on which '@' ends it */
	if (memchr(auth, '@', alen))
		return false;
	const char *host = auth, *rest;
	size_t hlen;
	bool bracketed = auth[0] == '[';
	if (bracketed) {
		const char *close = memchr(auth, ']', alen);
		if (!close)
			return false;
		host = auth + 1;
		hlen = (size_t)(close - host);
		rest = close + 1;
	} else {
		const char *colon = memchr(auth, ':', alen);
		hlen = colon ? (size_t)(colon - auth) : alen;
		rest = auth + hlen;
	}
	size_t rlen = alen - (size_t)(rest - auth);
	if (rlen && !(rest[0] == ':' && port_ok(rest + 1, rlen - 1)))
		return false;
	return host_is_loopback(host, hlen, bracketed);
}
