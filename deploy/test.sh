#!/usr/bin/env bash
# The README's test command (`make test`): installs what is missing, starts the servers the suite
# needs (and the supervisor; not the feed, processors and scorer, whose traffic the tests do not
# expect), runs every test, and stops exactly what it started, whatever the outcome.
#
# Without arguments the unit tests (no servers) run while the servers start, then the integration
# and end-to-end tests (those that mostly wait beside the others); with arguments
# (`make test ARGS="-k export"`) pytest gets them as given, once the servers are up.
set -uo pipefail
cd "$(dirname "$0")/.."
deploy/bootstrap.sh || exit 1

record=$(mktemp)
stop_started() { .venv/bin/featurestore stack down --recorded "$record"; }
trap stop_started EXIT

if [ "$#" -gt 0 ]; then
  .venv/bin/featurestore stack up --servers-only --record "$record" || exit 1
  .venv/bin/pytest "$@"
  exit $?
fi

up_log=$(mktemp)
.venv/bin/featurestore stack up --servers-only --record "$record" >"$up_log" 2>&1 &
up_pid=$!
.venv/bin/pytest -n auto tests/unit  # pytest-xdist: one worker per core (no servers to share)
unit=$?
if ! wait "$up_pid"; then
  cat "$up_log"
  exit 1
fi
cat "$up_log"
# The modules marked mostly_waits (pings, pacing, backoff: a fifth of a core) run beside the
# others, whose Spark and JVM work keeps the cores busy; their report follows the others'.
side_log=$(mktemp)
.venv/bin/pytest -m mostly_waits tests/integration tests/e2e >"$side_log" 2>&1 &
side_pid=$!
.venv/bin/pytest -m "not mostly_waits" tests/integration tests/e2e
rest=$?
wait "$side_pid"
side=$?
echo "--- beside them, the tests marked mostly_waits:"
cat "$side_log"
echo "unit tests: exit $unit; integration and end-to-end tests: exit $rest;" \
  "beside them (mostly_waits): exit $side"
[ "$unit" -eq 0 ] && [ "$rest" -eq 0 ] && [ "$side" -eq 0 ]
