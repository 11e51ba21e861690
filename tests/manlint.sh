#!/bin/sh
# Lints every man page with mandoc; any message at warning level or above fails.
: "${XCOMP_SRCDIR:=$(dirname "$0")/..}"
: "${MANDOC:=mandoc}"
status=0
for page in "$XCOMP_SRCDIR"/man/*.[1-8]; do
	out=$("$MANDOC" -Tlint -Wwarning "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "$out"
		status=1
	else
		echo "ok: $(basename "$page")"
	fi
done
exit $status
