#!/usr/bin/env bash
# The README's test command (`make test`): installs what is missing, starts the servers the suite
# needs (and the supervisor; not the feed, processors and scorer, whose traffic the tests do not
# expect), runs every test, and stops exactly what it started, whatever the outcome.
set -uo pipefail
cd "$(dirname "$0")/.."
deploy/bootstrap.sh || exit 1

record=$(mktemp)
stop_started() { .venv/bin/featurestore stack down --recorded "$record"; }
trap stop_started EXIT

.venv/bin/featurestore stack up --servers-only --record "$record" || exit 1
.venv/bin/pytest "$@"
