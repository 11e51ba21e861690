/*
 * The stream a server sends the agent: its header, the handshake's answer,
 * stanzas for the call bridge, stream errors. Every stanza is built whole,
 * as the agent reads it without a relay.
 */
#include "fuzz.h"
#include "xs_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_xs_stream(data, size, 0);
	return 0;
}
