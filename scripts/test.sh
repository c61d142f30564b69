#!/usr/bin/env bash
# The project's test command (the README's, and CI's through .ci/run):
#
#   scripts/test.sh
#
# 1. installs what the tests need when it is missing, from Debian's packages
#    (apt-get, non-interactive; apt-get update only if the install needs it):
#    redis-server, redis-tools, chromium, and libnss3-tools (certutil: the
#    demo's browser test trusts the demo CA as the README tells a person to);
# 2. starts a redis-server and a three-master Redis Cluster on free loopback
#    ports, in a temporary directory (scripts/redis.sh), and stops them by PID
#    when it exits, whatever happens;
# 3. exports the test environment (STEPUP_TEST_REDIS_ADDR,
#    STEPUP_TEST_REDIS_CLUSTER, STEPUP_TEST_CHROMIUM, and STEPUP_TEST_REQUIRE=1,
#    so that a test missing a server or the browser fails instead of skipping);
# 4. checks gofmt, runs go vet ./... and go test -race ./... (and the same in
#    bench/ when it is a module of its own).
#
# It runs every step and exits non-zero if any failed. Needs root (or sudo)
# only when something must be installed. Extra arguments go to go test,
# e.g. scripts/test.sh -run TestConformance.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh

command -v go >/dev/null 2>&1 || die "go is not on PATH"

ensure_commands redis-server=redis-server redis-cli=redis-tools certutil=libnss3-tools
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
if [ -f bench/go.mod ]; then
	step "bench: go vet ./..." bash -c 'cd bench && go vet ./...'
	step "bench: go test ./..." bash -c 'cd bench && go test ./...'
fi

if [ ${#failed[@]} -gt 0 ]; then
	log "FAILED steps: ${failed[*]}"
	exit 1
fi
log "all steps passed"
