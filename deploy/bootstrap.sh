#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, and nothing twice:
#   - Debian packages: PostgreSQL 15, Redis 7, Java 17, Maven, Prometheus, Chromium (only those
#     missing);
#   - the Python virtual environment .venv with the project and its pinned dependencies
#     (re-installed only when pyproject.toml or the SDK's C source changes);
#   - grpcurl (a Go client of the API, for the tests), ghz (load by reflection), buf (lints proto/,
#     checks breaking changes, generates the clients) and its Go plugins through the Go module proxy;
#   - the Go client's modules (warming the build cache with its example) and the TypeScript
#     client's npm packages (clients/go, clients/typescript);
#   - the benchmarks' Go load generator (bench/loadgen, into build/bench/loadgen);
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
# A C compiler and Python's headers build the SDK's native decoder (clients/python).
command -v gcc >/dev/null || missing+=(gcc)
"$PYTHON" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  || missing+=("$(basename "$PYTHON")-dev")
# Headless Chromium for the dashboard's browser test (tests/integration/dashboard).
command -v chromium >/dev/null || missing+=(chromium)
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

stamp=.venv/.installed-$(cat pyproject.toml clients/python/pyproject.toml clients/python/src/featurestore_client/_native_columns.c | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || { log "creating .venv with $PYTHON"; "$PYTHON" -m venv .venv; }
  log "installing Python dependencies into .venv (a minute or two the first time)"
  # uv resolves and installs the same pins as pip in about a third of pip's time (45-60 s
  # against 160 s here); pip stays in the environment for users.
  .venv/bin/pip install -q --upgrade pip setuptools wheel uv==0.13.9
  .venv/bin/uv pip install -q --python .venv/bin/python -e '.[dev]' -e clients/python
  # pyspark is a source distribution; uv keeps a ~1.3 GB build of it per install whenever the
  # index does not let it reuse the last one. Only what this install uses is kept.
  .venv/bin/uv cache prune -q || true
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

# ghz: a load generator that finds methods by server reflection (tests/integration/service).
if command -v go >/dev/null && [ ! -x "$GOBIN_DIR/ghz" ] && ! command -v ghz >/dev/null; then
  log "building ghz with go install"
  go install github.com/bojand/ghz/cmd/ghz@v0.120.0
fi
# kustomize renders deploy/k8s for the manifest tests (tests/unit/deploy); kubectl's built-in
# copy serves as well, so it is built only where neither is installed.
if command -v go >/dev/null && [ ! -x "$GOBIN_DIR/kustomize" ] && ! command -v kustomize >/dev/null \
  && ! command -v kubectl >/dev/null; then
  log "building kustomize with go install"
  go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
fi
# buf generate's Go plugins (buf.gen.yaml), at the versions the committed clients/go/gen names.
if command -v go >/dev/null && [ ! -x "$GOBIN_DIR/protoc-gen-go" ]; then
  log "building protoc-gen-go with go install"
  go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
fi
if command -v go >/dev/null && [ ! -x "$GOBIN_DIR/protoc-gen-go-grpc" ]; then
  log "building protoc-gen-go-grpc with go install"
  go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
fi
# The Go client: its modules, and its example built once so that the tests' build is quick.
go_stamp=build/clients/.go-$(cat clients/go/go.sum | sha256sum | cut -c1-16)
if command -v go >/dev/null && [ ! -f "$go_stamp" ]; then
  log "downloading the Go client's modules and building its example"
  mkdir -p build/clients
  (cd clients/go && go mod download && go build -o ../../build/clients/quickstart-go ./examples/quickstart)
  rm -f build/clients/.go-*
  touch "$go_stamp"
fi
# The benchmarks' load generator outside Python (bench/loadgen, bench/go_load.py), rebuilt when
# its sources change.
loadgen_stamp=build/bench/.loadgen-$(cat bench/loadgen/go.mod bench/loadgen/go.sum bench/loadgen/*.go | sha256sum | cut -c1-16)
if command -v go >/dev/null && [ ! -f "$loadgen_stamp" ]; then
  log "building the benchmarks' Go load generator (bench/loadgen -> build/bench/loadgen)"
  mkdir -p build/bench
  (cd bench/loadgen && go build -o ../../build/bench/loadgen .)
  rm -f build/bench/.loadgen-*
  touch "$loadgen_stamp"
fi
# The TypeScript client: npm packages from package-lock.json (re-installed when it changes).
npm_stamp=clients/typescript/node_modules/.installed-$(sha256sum < clients/typescript/package-lock.json | cut -c1-16)
if command -v npm >/dev/null && [ ! -f "$npm_stamp" ]; then
  log "installing the TypeScript client's npm packages (npm ci)"
  (cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error)
  touch "$npm_stamp"
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
