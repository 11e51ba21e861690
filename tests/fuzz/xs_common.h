/* The XMPP stream layer under fuzz: see xs_common.c. */
#ifndef XCOMP_FUZZ_XS_COMMON_H
#define XCOMP_FUZZ_XS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Feed data as one incoming stream, in pieces; shallow as the relay reads. */
void fuzz_xs_stream(const uint8_t *data, size_t size, int shallow);

#endif
