/*
 * buf: a growable byte buffer with a hard cap. Nothing in xcomp buffers
 * without bound: every buf is created with its maximum size.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_BUF_H
#define XCOMP_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t off;  /* consumed bytes at the front */
	size_t len;  /* bytes after off */
	size_t size; /* allocated */
	size_t max;  /* cap on len */
};

void buf_init(struct buf *, size_t max);
/* Append; -1 (and nothing appended) if len would exceed max. */
int buf_add(struct buf *, const void *, size_t);
int buf_addstr(struct buf *, const char *);
/* Append formatted text; -1 (nothing appended) past the cap. */
int buf_printf(struct buf *, const char *, ...) __attribute__((format(printf, 2, 3)));
/* Drop n bytes from the front. */
void buf_consume(struct buf *, size_t n);
/* Pointer to the first unconsumed byte. */
static inline char *
buf_head(const struct buf *b)
{
	return b->data + b->off;
}
/* Free the storage (the buf may be reused after buf_init). */
void buf_free(struct buf *);
/* Release storage when empty, so idle connections hold no buffer. */
void buf_shrink(struct buf *);

#endif
