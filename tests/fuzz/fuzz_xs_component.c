/*
 * The stream a component sends: to xcomp-server, or to the agent's relay.
 * Both modes: stanzas built whole (xcomp-server) and shallow (the relay,
 * which passes them on as received); the first byte chooses.
 */
#include "fuzz.h"
#include "xs_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fuzz_xs_stream(data + 1, size - 1, data[0] & 1);
	return 0;
}
