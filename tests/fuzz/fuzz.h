/*
 * Shared by the fuzz targets: libFuzzer's entry point, a check that aborts
 * (so the fuzzer keeps the input), and the pieces an input is fed in.
 */
#ifndef XCOMP_FUZZ_H
#define XCOMP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(c)                                                                              \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * Where to cut the input: the first two bytes seed a small generator whose
 * numbers are the sizes of the pieces (1 to 64 bytes, now and then all that
 * is left), so the fuzzer chooses the split points as it chooses the bytes.
 */
struct fuzz_split {
	uint32_t state;
};

static inline void
fuzz_split_init(struct fuzz_split *s, const uint8_t **data, size_t *size)
{
	s->state = 0x9e3779b9u;
	if (*size >= 2) {
		s->state ^= (uint32_t)(*data)[0] << 8 | (*data)[1];
		*data += 2;
		*size -= 2;
	}
}

static inline size_t
fuzz_split_next(struct fuzz_split *s, size_t left)
{
	uint32_t x = s->state;
	size_t n;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	s->state = x;
	n = (x & 7) == 0 ? left : 1 + (x >> 8) % 64;
	return n < left ? n : left;
}

#endif
