#!/bin/sh
# Run each fuzz target under libFuzzer for FUZZ_SECONDS and print its
# figures, FUZZ_JOBS targets at a time (default 1; each target is one
# process). Usage (from make fuzz): run-fuzz.sh TARGET...
# New inputs go to fuzz-work/TARGET/ in the build tree; the committed seeds
# in tests/fuzz/corpus/TARGET/ are read, never written. A crash leaves
# fuzz-work/TARGET-crash-* (copy it into the corpus as a regression test
# once fixed) and fails the run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${XCOMP_BUILDDIR:-.}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
mkdir -p "$build/fuzz-work"

# fuzz TARGET: run it, print one line, leave the exit status in fuzz-work/TARGET.rc.
fuzz() {
	t=$1
	work=$build/fuzz-work/$t
	log=$build/fuzz-work/$t.log
	mkdir -p "$work"
	opts=
	case $t in
	xs_*) opts=-dict=$here/xmpp.dict ;;
	# Each input is a session over a socket: keep them short.
	relay) opts="-dict=$here/xmpp.dict -max_len=4096" ;;
	conf) opts=-dict=$here/conf.dict ;;
	esac
	# -rss_limit_mb: the agent's own limits keep far below it.
	"$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
		-rss_limit_mb=1024 -timeout=10 -artifact_prefix="$build/fuzz-work/$t-" \
		$opts "$work" "$here/corpus/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	if [ $rc -eq 0 ]; then
		echo "fuzz $t: ${seconds} s, ${runs:-?} runs, ${eps:-?} exec/s, coverage ${cov:-?} edges, ${ft:-?} features, corpus ${corp:-?}, peak RSS ${rss:-?} MB, no finding"
	else
		echo "fuzz $t: FAILED after ${runs:-?} runs (exit $rc); the input is in $build/fuzz-work/$t-*"
		grep -E 'ERROR|SUMMARY|check failed|==[0-9]+==' "$log" | head -n 20
		tail -n 40 "$log"
	fi
	echo $rc >"$build/fuzz-work/$t.rc"
}

for t in "$@"; do
	rm -f "$build/fuzz-work/$t.rc"
done
running=0
for t in "$@"; do
	fuzz "$t" &
	running=$((running + 1))
	if [ $running -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait
status=0
for t in "$@"; do
	[ "$(cat "$build/fuzz-work/$t.rc" 2>/dev/null)" = 0 ] || status=1
done
exit $status
