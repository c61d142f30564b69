#!/usr/bin/env bash
# The project's test command (the README's, and CI's through .ci/run):
#
#   scripts/test.sh
#
# 1. installs what the tests need when it is missing, from Debian's packages
#    (apt-get, non-interactive; apt-get update only if the install needs it):
#    redis-server, redis-tools, chromium, zbar-tools (zbarimg: internal/qr
#    decodes its own QR codes) and libnss3-tools (certutil: the
#    demo's browser test trusts the demo CA as the README tells a person to);
# 2. starts a redis-server and a three-master Redis Cluster on free loopback
#    ports, in a temporary directory (scripts/redis.sh), and stops them by PID
#    when it exits, whatever happens;
# 3. exports the test environment (STEPUP_TEST_REDIS_ADDR,
#    STEPUP_TEST_REDIS_CLUSTER, STEPUP_TEST_CHROMIUM, and STEPUP_TEST_REQUIRE=1,
#    so that a test missing a server or the browser fails instead of skipping);
# 4. checks gofmt, runs go vet ./... and go test -race ./... (and the same in
#    bench/ and examples/ when they are modules of their own);
# 5. a short fuzz pass: every Fuzz target of the module, one after another,
#    for STEPUP_FUZZTIME each (whole seconds, default 3s; 0 skips the pass;
#    it is skipped too when extra arguments select tests). About two minutes
#    for the ~24 targets. The long pass is in the README's testing section.
#
# It runs every step and exits non-zero if any failed. Needs root (or sudo)
# only when something must be installed. Extra arguments go to go test,
# e.g. scripts/test.sh -run TestConformance.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh

command -v go >/dev/null 2>&1 || die "go is not on PATH"

ensure_commands redis-server=redis-server redis-cli=redis-tools certutil=libnss3-tools zbarimg=zbar-tools
if [ -n "${STEPUP_TEST_CHROMIUM:-}" ] && [ -x "$STEPUP_TEST_CHROMIUM" ]; then
	: # a browser of the caller's choice
else
	ensure_commands chromium=chromium
	STEPUP_TEST_CHROMIUM=$(command -v chromium)
fi
"$STEPUP_TEST_CHROMIUM" --version >/dev/null 2>&1 ||
	die "the browser $STEPUP_TEST_CHROMIUM does not run ($STEPUP_TEST_CHROMIUM --version failed)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stepup-test.XXXXXX")
cleanup() {
	local rc=$?
	scripts/redis.sh stop "$tmp/redis" || log "warning: could not stop the Redis servers in $tmp/redis"
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

env_lines=$(scripts/redis.sh start "$tmp/redis") || die "could not start the Redis servers"
eval "$env_lines"
[ -n "${STEPUP_TEST_REDIS_ADDR:-}" ] && [ -n "${STEPUP_TEST_REDIS_CLUSTER:-}" ] ||
	die "scripts/redis.sh start did not give the Redis addresses"
export STEPUP_TEST_REDIS_ADDR STEPUP_TEST_REDIS_CLUSTER STEPUP_TEST_CHROMIUM
export STEPUP_TEST_REQUIRE=1
log "STEPUP_TEST_REDIS_ADDR=$STEPUP_TEST_REDIS_ADDR STEPUP_TEST_REDIS_CLUSTER=$STEPUP_TEST_REDIS_CLUSTER STEPUP_TEST_CHROMIUM=$STEPUP_TEST_CHROMIUM"

failed=()
step() {
	local name=$1
	shift
	log "== $name"
	if ! "$@"; then
		log "FAILED: $name"
		failed+=("$name")
	fi
}

check_gofmt() {
	local out
	out=$(gofmt -l .)
	if [ -n "$out" ]; then
		log "files not formatted with gofmt:"
		printf '%s\n' "$out" >&2
		return 1
	fi
}

step "gofmt -l" check_gofmt
step "go vet ./..." go vet ./...
step "go test -race ./..." go test -race "$@" ./...
if [ -f examples/go.mod ]; then
	step "examples: go vet ./..." bash -c 'cd examples && go vet ./...'
	step "examples: go test ./..." bash -c 'cd examples && go test -race ./...'
fi
if [ -f bench/go.mod ]; then
	step "bench: go vet ./..." bash -c 'cd bench && go vet ./...'
	step "bench: go test ./..." bash -c 'cd bench && go test ./...'
fi

# fuzz_one fuzzes target $2 of package $1 for $3. On an overloaded machine
# the fuzzer may not finish replaying its corpus within a short -fuzztime and
# stops with "context deadline exceeded" having found nothing: that is retried
# once with four times the time, then reported as a warning, not a failure
# (the corpus itself was replayed by go test -race above). Any other failure,
# a crasher above all, fails the step.
fuzz_one() {
	local pkg=$1 name=$2 fuzztime=$3 out attempt
	for attempt in 1 2; do
		if out=$(go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
			printf '%s\n' "$out" | tail -n 2 >&2
			return 0
		fi
		if ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written' <<<"$out"; then
			printf '%s\n' "$out" >&2
			log "FAILED: fuzz $pkg $name (a failing input is written to that package's testdata/fuzz/$name)"
			return 1
		fi
		fuzztime=$(( ${fuzztime%s} * 4 ))s
		log "fuzz $pkg $name did not get going in time (machine overloaded?); again for $fuzztime"
	done
	log "warning: fuzz $pkg $name could not start fuzzing on this machine; its seed corpus ran in go test"
	return 0
}

# fuzz_pass runs every Fuzz target of every package for $1 each, in turn
# (go test -fuzz takes one target of one package at a time).
fuzz_pass() {
	local fuzztime=$1 pkg name names rc=0 n=0
	for pkg in $(go list ./...); do
		names=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
		for name in $names; do
			n=$((n + 1))
			log "fuzz $pkg $name for $fuzztime"
			fuzz_one "$pkg" "$name" "$fuzztime" || rc=1
		done
	done
	if [ "$n" -eq 0 ]; then
		log "no fuzz target found"
		return 1
	fi
	log "fuzzed $n targets"
	return $rc
}

fuzztime=${STEPUP_FUZZTIME:-3s}
case $fuzztime in
0 | [1-9]*s) ;;
*) die "STEPUP_FUZZTIME=$fuzztime: give whole seconds, e.g. 3s, 600s (or 0 to skip)" ;;
esac
if [ $# -eq 0 ] && [ "$fuzztime" != 0 ]; then
	step "fuzz pass ($fuzztime per target)" fuzz_pass "$fuzztime"
fi

if [ ${#failed[@]} -gt 0 ]; then
	log "FAILED steps: ${failed[*]}"
	exit 1
fi
log "all steps passed"
