/*
 * jid: domain parts of JIDs (RFC 7622), as far as routing components needs.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "jid.h"

int
jid_domain(const char *jid, char *out, size_t outlen)
{
	const char *at, *slash, *start;
	size_t n;

	slash = strchr(jid, '/');
	at = strchr(jid, '@');
	if (at != NULL && slash != NULL && at > slash)
		at = NULL; /* an '@' in the resource part */
	start = at ? at + 1 : jid;
	n = slash ? (size_t)(slash - start) : strlen(start);
	if (n == 0 || n >= outlen)
		return -1;
	memcpy(out, start, n);
	out[n] = '\0';
	/* A trailing dot names the same domain (RFC 7622 3.2). */
	if (n > 1 && out[n - 1] == '.')
		out[n - 1] = '\0';
	return 0;
}

int
jid_in_domain(const char *jid, const char *domain)
{
	char d[1024];

	if (jid_domain(jid, d, sizeof(d)) == -1)
		return 0;
	return strcasecmp(d, domain) == 0;
}

int
jid_valid_domain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
			return 0;
	return 1;
}
