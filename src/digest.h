/*
 * digest: the XEP-0114 handshake: lowercase hex SHA-1 of the stream id
 * concatenated with the shared secret, via GnuTLS.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_DIGEST_H
#define XCOMP_DIGEST_H

#include <stddef.h>

#define DIGEST_HEXLEN 40

/* out holds DIGEST_HEXLEN + 1 bytes. */
int digest_handshake(const char *id, const char *secret, char out[DIGEST_HEXLEN + 1]);

/* 1 if equal, in time independent of where they differ; 0 otherwise. */
int digest_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
