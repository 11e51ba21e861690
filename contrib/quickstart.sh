#!/bin/sh
# The README's two commands: "demo" and "test". Each installs what is
# missing (Debian 12, as root or through sudo), builds, and then runs the
# demo or the whole test suite. Running it again skips what is done already.
set -eu

PACKAGES="autoconf automake make gcc pkg-config libgnutls28-dev gnutls-bin \
libexpat1-dev libunbound-dev libevent-dev libcurl4-gnutls-dev check valgrind \
mandoc unbound ldnsutils python3 libsystemd-dev systemd nftables iproute2"
# The fuzz targets' compiler and libFuzzer (tests/fuzz/).
FUZZ_PACKAGES="clang libclang-rt-14-dev"
# The interoperability tests' peers: XMPP servers and component libraries.
PEERS="prosody ejabberd python3-slixmpp libstrophe-dev nodejs"
# make deb and make deb-check: the Debian packages built, linted, installed
# and purged (contrib/debian/).
DEB_PACKAGES="debhelper dpkg-dev fakeroot lintian adduser man-db"
# promtool, which checks the metrics file (Debian's prometheus); without it
# that one check is skipped, saying so.
TOOLS="prometheus"

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

say() { printf '== %s\n' "$*"; }

# Install the Debian packages named in $@ that are missing.
install_list() {
	missing=""
	for p in "$@"; do
		if [ "$p" = npm ]; then
			# Debian's nodejs comes without npm (NodeSource's carries its own).
			command -v npm >/dev/null 2>&1 || missing="$missing npm"
			continue
		fi
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	say "installing:$missing"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	# The tests start their own unbound, Prosody and ejabberd on their own
	# ports; whatever service a package starts is never used.
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $missing >/dev/null
}

install_packages() {
	install_list $PACKAGES
	# A peer that cannot be installed makes its tests skip, saying so; the rest run.
	if [ -n "${WITH_PEERS:-}" ]; then
		install_list $DEB_PACKAGES
		install_list $FUZZ_PACKAGES
		install_list $PEERS npm || say "some interoperability peers could not be installed"
		install_list $TOOLS || say "prometheus (promtool) could not be installed"
	fi
}

build() {
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		say "autoreconf"
		autoreconf -fi >/dev/null
	fi
	if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
		say "configure"
		./configure --enable-werror -q
	fi
	say "make"
	make -s -j"$(nproc)"
}

# One plain closing line, "N passed, N failed", over every single test: the
# Check suites' "Checks: N, Failures: F, Errors: E" and the integration
# scripts' own "N passed, M failed" lines, from the logs automake keeps.
summary() {
	find "$@" -name '*.log' | xargs cat 2>/dev/null | awk '
		/^[0-9]+%: Checks: / {
			gsub(",", ""); n += $3; f += $5 + $7; next
		}
		/^[0-9]+ passed, [0-9]+ failed$/ { n += $1 + $3; f += $3; next }
		END { printf "tests: %d passed, %d failed\n", n - f, f }'
}

# A fresh copy of the tarball in DIR (the source tree itself is configured
# for the normal build); prints the tree's path.
unpack() {
	[ -f xcomp-*.tar.gz ] || make -s dist >/dev/null
	rm -rf "$1" && mkdir "$1" && tar -xzf xcomp-*.tar.gz -C "$1"
	echo "$1"/xcomp-*
}

# The whole suite again, built with AddressSanitizer and UndefinedBehaviorSanitizer,
# from the tarball in _san/ (the source tree itself is configured for the normal build).
run_sanitizers() {
	say "make check again under AddressSanitizer and UndefinedBehaviorSanitizer (_san/)"
	tree=$(unpack _san)
	(cd "$tree" && ./configure -q --enable-werror --enable-sanitizers &&
		make -s -j"$(nproc)" && make -s -j"$(nproc)" check) >_san/check.log 2>&1 || {
		tail -n 60 _san/check.log
		cat _san/xcomp-*/test-suite.log 2>/dev/null | tail -n 80
		return 1
	}
	say "sanitizers found nothing"
}

# Every fuzz target under libFuzzer for FUZZ_SECONDS (30 s here; make fuzz
# alone: 60 s), one per core at a time, built with clang from the tarball in _fuzz/.
run_fuzz() {
	say "fuzz: each target ${FUZZ_SECONDS:-30} s under libFuzzer, ASan and UBSan (_fuzz/)"
	tree=$(unpack _fuzz)
	if (cd "$tree" && ./configure -q CC=clang --enable-werror --enable-fuzzing &&
		make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}" FUZZ_JOBS="$(nproc)") >_fuzz/fuzz.log 2>&1; then
		grep '^fuzz ' _fuzz/fuzz.log
		return 0
	fi
	tail -n 80 _fuzz/fuzz.log
	return 1
}

# The chaos soak's short form (make soak alone: 10 minutes).
run_soak() {
	say "soak: ${SOAK_SECONDS:-60} s of nodes killed, stopped and restarted and DNS changed"
	if make -s soak SOAK_SECONDS="${SOAK_SECONDS:-60}" >soak.log 2>&1; then
		grep '^soak' soak.log | tail -n 1
		return 0
	fi
	tail -n 60 soak.log
	return 1
}

# The netfault tier: packets dropped with nftables inside network namespaces
# the tests make themselves (tests/netfault/); each script skips, saying so in
# one line, where no namespace can be made.
run_netfault() {
	say "netfault: real packet drops in the tests' own network namespaces"
	if make -s netfault >netfault.log 2>&1; then
		grep -E '^(== |[0-9]+ passed|netfault: SKIP|  )' netfault.log
		return 0
	fi
	tail -n 120 netfault.log
	return 1
}

# make install into a scratch DESTDIR: what landed, listed, then make
# installcheck there (it fails when an expected file is missing).
run_install() {
	say "make install DESTDIR=... and make installcheck there"
	dest=$(mktemp -d)
	if make -s install DESTDIR="$dest" >install.log 2>&1 &&
		(cd "$dest" && find . -type f | sort) &&
		make -s installcheck DESTDIR="$dest" >>install.log 2>&1; then
		rm -rf "$dest"
		say "installcheck passed"
		return 0
	fi
	tail -n 40 install.log
	rm -rf "$dest"
	return 1
}

# make deb-check: make deb (the packages, from the tarball), lintian (its
# warnings and notes listed), the packages installed, run from the installed
# paths and purged, nothing left behind. Root only: it installs them.
run_deb() {
	if [ "$(id -u)" -ne 0 ]; then
		say "make deb-check skipped: not root (it installs the packages and purges them)"
		return 0
	fi
	say "make deb-check (make deb, lintian, dpkg -i, the installed programs, dpkg --purge)"
	if make -s deb-check >deb-check.log 2>&1; then
		grep -E '^make deb: |^  [EWIPX]: |^deb-check: (lintian|skipped|passed)' deb-check.log
		return 0
	fi
	tail -n 60 deb-check.log
	return 1
}

run_tests() {
	status=0
	say "make check"
	make -s -j"$(nproc)" check || status=1
	summary tests
	[ $status -eq 0 ] || { cat test-suite.log; return 1; }
	run_install || return 1
	run_deb || return 1
	say "make distcheck (a clean out-of-tree build and test of the tarball)"
	make -s distcheck >distcheck.log 2>&1 || {
		tail -n 80 distcheck.log
		return 1
	}
	say "distcheck passed"
	run_sanitizers || status=1
	summary tests _san
	run_fuzz || status=1
	run_soak || status=1
	run_netfault || status=1
	return $status
}

case "${1:-}" in
demo)
	install_packages
	build
	exec python3 contrib/demo.py
	;;
test)
	WITH_PEERS=1
	install_packages
	build
	run_tests
	;;
*)
	echo "usage: sh contrib/quickstart.sh demo | test" >&2
	exit 2
	;;
esac
