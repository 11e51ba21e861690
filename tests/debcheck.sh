#!/bin/sh
# make deb-check: the Debian packages built, linted, installed, used and
# purged on this machine. It needs root, dpkg-buildpackage and lintian, and
# a machine where neither package nor /etc/xcomp is there already; otherwise
# it says why in one line and exits 77 (skipped). Run from the build
# directory (MAKE names make). Whatever it installs it purges, also when a
# check fails; the xcomp user, which the purge removes (contrib/debian/
# xcomp.postrm), it removes too when a failed check left it.
set -u

MAKE=${MAKE:-make}
skip() { echo "deb-check: skipped: $*"; exit 77; }
say() { echo "deb-check: $*"; }
fail() {
	echo "deb-check: FAILED: $*"
	failed=1
}

[ "$(id -u)" -eq 0 ] || skip "not root (it installs and purges the packages)"
for t in dpkg dpkg-buildpackage dh lintian adduser; do
	command -v $t >/dev/null 2>&1 || skip "$t not found (apt-get install dpkg-dev debhelper fakeroot lintian)"
done
# dpkg's state of package $1: empty or not-installed when it is not there.
state() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null; }
for p in xcomp xcomp-server; do
	case "$(state $p)" in
	"" | not-installed) ;;
	*) skip "the package $p is on this machine already (dpkg --purge $p first)" ;;
	esac
done
[ ! -e /etc/xcomp ] || skip "/etc/xcomp exists already (a make install?); the purge check needs it absent"
[ ! -e /run/xcomp ] || skip "/run/xcomp exists already (an agent running here?)"

failed=0
made_user=0
id xcomp >/dev/null 2>&1 || made_user=1
tmp=$(mktemp -d)
installed=0
pid=""

cleanup() {
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null
	rm -f /etc/xcomp/xcompd.secret
	if [ $installed -eq 1 ]; then
		dpkg --purge xcomp xcomp-server >/dev/null 2>&1 || echo "deb-check: dpkg --purge failed"
	fi
	# It was not there before (see above): what a failed check left in it goes.
	rmdir /etc/xcomp 2>/dev/null
	if [ $made_user -eq 1 ] && id xcomp >/dev/null 2>&1; then
		deluser --system --quiet xcomp >/dev/null 2>&1
		getent group xcomp >/dev/null && delgroup --system --quiet xcomp >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start=$(date +%s)
$MAKE -s deb >"$tmp/deb.log" 2>&1 || {
	cat "$tmp/deb.log"
	echo "deb-check: FAILED: make deb"
	exit 1
}
grep '^make deb: .*\.deb$' "$tmp/deb.log"
debs=$(sed -n 's/^make deb: \(.*\.deb\)$/\1/p' "$tmp/deb.log")
say "make deb: $(($(date +%s) - start)) s"

# lintian: no error; the warnings and notes are printed (README, "Installing").
lintian --pedantic --display-info $debs >"$tmp/lintian" 2>&1
grep -v '^running with root privileges' "$tmp/lintian" | sed 's/^/  /'
if grep -q '^E:' "$tmp/lintian"; then
	fail "lintian reports errors"
fi
say "lintian: $(grep -c '^E:' "$tmp/lintian") errors, $(grep -c '^W:' "$tmp/lintian") warnings," \
	"$(grep -c '^[IP]:' "$tmp/lintian") notes"

# What exists before the install, so that the purge can be checked.
: >"$tmp/before"
: >"$tmp/listed"
for d in $debs; do
	dpkg-deb -c "$d" | awk '{ sub(/^\.\//, "/", $6); sub(/\/$/, "", $6); print $6 }'
done | sort -u | while read -r f; do
	[ -z "$f" ] && continue
	[ -e "$f" ] && echo "$f" >>"$tmp/before"
	echo "$f" >>"$tmp/listed"
done

installed=1
if ! dpkg -i $debs >"$tmp/dpkg.log" 2>&1; then
	cat "$tmp/dpkg.log"
	fail "dpkg -i"
	exit 1
fi
say "dpkg -i: installed $(dpkg-query -W -f="\${Package} \${Version}  " xcomp xcomp-server)"

# The installed files, as dpkg lists them.
for f in /usr/sbin/xcompd /usr/bin/xcomp /usr/sbin/xcomp-server /etc/xcomp/xcompd.conf \
	/lib/systemd/system/xcompd.service /lib/systemd/system/xcompd@.service \
	/usr/share/man/man1/xcomp.1.gz /usr/share/man/man5/xcompd.conf.5.gz \
	/usr/share/man/man7/xcomp-troubleshooting.7.gz /usr/share/man/man8/xcompd.8.gz \
	/usr/share/man/man8/xcomp-server.8.gz; do
	if ! dpkg -S "$f" >/dev/null 2>&1 || [ ! -f "$f" ]; then
		fail "$f: not installed by a package"
	fi
done
dpkg-query -W -f='${Conffiles}\n' xcomp | grep -q '^ /etc/xcomp/xcompd.conf ' ||
	fail "/etc/xcomp/xcompd.conf is not a conffile"

# The system user the units name (User=xcomp).
if entry=$(getent passwd xcomp); then
	uid=$(echo "$entry" | cut -d: -f3)
	shell=$(echo "$entry" | cut -d: -f7)
	[ "$uid" -lt 1000 ] || fail "xcomp: uid $uid is not a system uid"
	case "$shell" in */nologin | */false) ;; *) fail "xcomp: login shell $shell" ;; esac
	say "user: $entry"
else
	fail "no xcomp user after the install"
fi
grep -q '^User=xcomp$' /lib/systemd/system/xcompd.service || fail "xcompd.service: not User=xcomp"

# xcompd -t from the installed paths: the default configuration is
# /etc/xcomp/xcompd.conf, whose secret file must exist first.
out=$(xcompd -t 2>&1) && fail "xcompd -t passed without the secret file: $out"
echo "$out" | grep -q 'secret-file /etc/xcomp/xcompd.secret' ||
	fail "xcompd -t without -f did not read /etc/xcomp/xcompd.conf: $out"
say "xcompd -t, no secret yet: $out"
(umask 077 && echo deb-check-secret >/etc/xcomp/xcompd.secret)
for args in "-t" "-t -f /etc/xcomp/xcompd.conf" "-t -f /etc/xcomp/xcompd.conf -o user=xcomp"; do
	# shellcheck disable=SC2086
	if out=$(xcompd $args 2>&1); then
		say "xcompd $args: $out"
	else
		fail "xcompd $args: $out"
	fi
done
[ ! -e /run/xcomp ] || fail "xcompd -t made /run/xcomp"

# The agent itself, started as root by hand with "user = xcomp", towards a
# closed port on loopback: it makes /run/xcomp for the user, writes its
# status there, and xcomp status reads it from the default path.
xcompd -o server=127.0.0.1:1 -o log=stderr -o user=xcomp 2>"$tmp/agent.log" &
pid=$!
i=0
while [ ! -s /run/xcomp/status ] && [ $i -lt 100 ] && kill -0 $pid 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if [ -s /run/xcomp/status ]; then
	owner=$(ps -o user= -p $pid)
	[ "$owner" = xcomp ] || fail "xcompd runs as $owner, not xcomp"
	[ "$(stat -c %U /run/xcomp/status)" = xcomp ] || fail "/run/xcomp/status is not xcomp's"
	xcomp status >"$tmp/status" 2>&1
	say "xcompd running as $owner; xcomp status: $(head -n 1 "$tmp/status")"
	grep -q 'cb1.tptac9.com' "$tmp/status" || fail "xcomp status: $(cat "$tmp/status")"
else
	fail "xcompd wrote no /run/xcomp/status: $(cat "$tmp/agent.log")"
fi
kill -TERM $pid 2>/dev/null
wait $pid || fail "xcompd exited $? on SIGTERM: $(cat "$tmp/agent.log")"
pid=""
rm -f /etc/xcomp/xcompd.secret
for cmd in "xcompd -V" "xcomp --help" "xcomp-server --help"; do
	# shellcheck disable=SC2086
	$cmd >/dev/null 2>"$tmp/err" || fail "$cmd: $(cat "$tmp/err")"
done
say "xcompd -V: $(xcompd -V); xcomp --help, xcomp-server --help: ok"

# The man pages, found by name.
if command -v man >/dev/null 2>&1; then
	for page in "1 xcomp" "5 xcompd.conf" "7 xcomp-troubleshooting" "8 xcompd" "8 xcomp-server"; do
		# shellcheck disable=SC2086
		out=$(MANPAGER=cat MANWIDTH=80 man $page 2>"$tmp/err" | head -n 3)
		if [ -s "$tmp/err" ] || [ -z "$out" ]; then
			fail "man $page: $(cat "$tmp/err")"
		fi
	done
	say "man xcomp, xcompd.conf, xcomp-troubleshooting, xcompd, xcomp-server: ok"
else
	say "man not installed: the pages are checked by make installcheck only"
fi

# The installed units as systemd reads them.
if command -v systemd-analyze >/dev/null 2>&1; then
	out=$(systemd-analyze verify --man=no /lib/systemd/system/xcompd.service 2>&1) ||
		fail "systemd-analyze verify xcompd.service: $out"
	[ -z "$out" ] || fail "systemd-analyze verify xcompd.service: $out"
	ln -s /lib/systemd/system/xcompd@.service "$tmp/xcompd@cb1.service"
	out=$(systemd-analyze verify --man=no "$tmp/xcompd@cb1.service" 2>&1) ||
		fail "systemd-analyze verify xcompd@cb1.service: $out"
	say "systemd-analyze verify xcompd.service xcompd@cb1.service: ok"
else
	say "systemd-analyze not installed: the units are not verified here"
fi
# Installed, not enabled (contrib/debian/rules): nothing wants it yet.
[ ! -e /etc/systemd/system/multi-user.target.wants/xcompd.service ] ||
	fail "xcompd.service was enabled by the install"

# The purge: every file and directory the packages brought is gone, and so
# are /etc/xcomp, /run/xcomp and the xcomp user and group (contrib/debian/xcomp.postrm).
if ! dpkg --purge xcomp xcomp-server >"$tmp/purge.log" 2>&1; then
	cat "$tmp/purge.log"
	fail "dpkg --purge"
fi
installed=0
left=$(while read -r f; do
	grep -qxF "$f" "$tmp/before" && continue
	if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
done <"$tmp/listed")
[ -z "$left" ] || fail "left behind by dpkg --purge: $(echo "$left" | tr '\n' ' ')"
# Besides the packages' own paths (/etc/xcomp among them): the runtime
# directory and dpkg's and deb-systemd-helper's records.
for f in /run/xcomp /var/lib/dpkg/info/xcomp.list /var/lib/dpkg/info/xcomp-server.list \
	/var/lib/systemd/deb-systemd-helper-enabled/xcompd.service.dsh-also; do
	[ ! -e "$f" ] || fail "left behind by dpkg --purge: $f"
done
for p in xcomp xcomp-server; do
	case "$(state $p)" in
	"" | not-installed) ;;
	*) fail "$p: dpkg says $(state $p) after the purge" ;;
	esac
done
if [ $made_user -eq 1 ]; then
	! getent passwd xcomp >/dev/null || fail "left behind by dpkg --purge: the xcomp user"
	! getent group xcomp >/dev/null || fail "left behind by dpkg --purge: the xcomp group"
fi
[ $failed -ne 0 ] || say "dpkg --purge: the packages' $(wc -l <"$tmp/listed") paths gone, /run/xcomp and the xcomp user too"

if [ $failed -ne 0 ]; then
	say "failed"
	exit 1
fi
say "passed in $(($(date +%s) - start)) s"
exit 0
