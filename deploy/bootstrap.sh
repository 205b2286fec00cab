#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, and nothing twice:
#   - Debian packages: PostgreSQL 15, Redis 7, Java 17, Maven, Prometheus (only those missing);
#   - the Python virtual environment .venv with the project and its pinned dependencies
#     (re-installed only when pyproject.toml changes);
#   - grpcurl (a Go client of the API, for the tests) and buf (lints the proto files) through the
#     Go module proxy;
#   - the JVM jars (Kafka broker, Spark's Kafka connector) resolved by Maven from deploy/jvm/pom.xml.
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { printf '[setup] %s\n' "$*"; }

missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v prometheus >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian packages start their own servers; the project runs its own instances instead.
  if [[ " ${missing[*]} " == *" redis-server "* ]] && [ -f /run/redis/redis-server.pid ]; then
    $SUDO kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
  fi
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now prometheus 2>/dev/null || true
  fi
fi

stamp=.venv/.installed-$(cat pyproject.toml clients/python/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || { log "creating .venv with $PYTHON"; "$PYTHON" -m venv .venv; }
  log "installing Python dependencies into .venv (a few minutes the first time)"
  .venv/bin/pip install -q --upgrade pip setuptools wheel
  .venv/bin/pip install -q -e '.[dev]' -e clients/python
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# A client in another language for the API tests: grpcurl, built from the Go module proxy.
GOBIN_DIR=$(go env GOPATH 2>/dev/null)/bin
if command -v go >/dev/null && [ ! -x "$GOBIN_DIR/grpcurl" ] && ! command -v grpcurl >/dev/null; then
  log "building grpcurl with go install"
  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
fi
# buf lint / buf breaking for proto/ (buf.yaml). Pinned: @latest needs a protocompile
# pseudo-version the module proxy refuses (403); v1.50.0 resolves.
if command -v go >/dev/null && [ ! -x "$GOBIN_DIR/buf" ] && ! command -v buf >/dev/null; then
  log "building buf with go install"
  go install github.com/bufbuild/buf/cmd/buf@v1.50.0
fi

log "resolving JVM jars with Maven (deploy/jvm/pom.xml)"
.venv/bin/python -c '
from featurestore.config import load_settings
from featurestore.stack import resolve_jars
settings = load_settings()
for profile in ("kafka", "spark"):
    print("[setup]", profile, "jars in", resolve_jars(settings, profile))
'
log "ready"
