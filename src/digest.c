/*
 * digest: the XEP-0114 handshake value, hex(SHA-1(stream id || secret)),
 * computed with GnuTLS, and a comparison that takes the same time wherever
 * two values differ.
 */
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "digest.h"
#include "util.h"

int
digest_handshake(const char *id, const char *secret, char out[DIGEST_HEXLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[20];
	size_t idlen = strlen(id), slen = strlen(secret), i;
	char *in;
	int r;

	in = xmalloc(idlen + slen);
	memcpy(in, id, idlen);
	memcpy(in + idlen, secret, slen);
	r = gnutls_hash_fast(GNUTLS_DIG_SHA1, in, idlen + slen, md);
	/* The concatenation holds the secret: wipe it before it goes back to malloc. */
	util_wipe(in, idlen + slen);
	free(in);
	if (r < 0)
		return -1;
	for (i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[DIGEST_HEXLEN] = '\0';
	util_wipe(md, sizeof(md));
	return 0;
}

int
digest_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;
	size_t i, n = alen < blen ? alen : blen;

	for (i = 0; i < n; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}
