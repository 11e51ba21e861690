#!/bin/sh
# Runs one Check unit test program, under valgrind when it is installed, so
# that a leak or a memory error fails the test like a wrong answer does.
# CK_FORK=no keeps every test in the one process valgrind watches.
prog=$1
shift
if [ -n "$VALGRIND" ] && [ "$VALGRIND" != no ] && [ -z "$XCOMP_NO_VALGRIND" ]; then
	CK_FORK=no exec "$VALGRIND" -q --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$prog" "$@"
fi
exec "$prog" "$@"
