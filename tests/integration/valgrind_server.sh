#!/bin/sh
# The xcomp-server integration tests again, with the server and every
# xcomp-server command under valgrind: any memory error or leak fails.
if [ -z "$VALGRIND" ] || [ "$VALGRIND" = no ]; then
	echo "SKIP: valgrind is not installed"
	exit 77
fi
XCOMP_VALGRIND=1 exec "${PYTHON3:-python3}" "$(dirname "$0")/test_server.py"
