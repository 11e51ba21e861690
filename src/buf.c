/*
 * buf: growable byte buffer with a hard cap (curl's dynbuf "toobig" idea).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	size_t need;

	if (n > b->max || b->len > b->max - n)
		return -1;
	if (n == 0)
		return 0;
	/* Slide consumed bytes out before growing. */
	if (b->off > 0 && b->off + b->len + n > b->size) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	need = b->off + b->len + n;
	if (need > b->size) {
		size_t size = b->size ? b->size : 256;

		while (size < need)
			size *= 2;
		b->data = xrealloc(b->data, size);
		b->size = size;
	}
	memcpy(b->data + b->off + b->len, p, n);
	b->len += n;
	return 0;
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, r;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	r = buf_add(b, s, (size_t)n);
	free(s);
	return r;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->off = b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->size = 0;
}

void
buf_shrink(struct buf *b)
{
	if (b->len == 0)
		buf_free(b);
}
