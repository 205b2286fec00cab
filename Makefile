# The two commands of the quick start are `make run` and `make test`; the rest are for developers.
.PHONY: setup run test test-unit down status bench chaos soak lint format proto clean

VENV := .venv/bin

setup:            ## install Debian packages, the Python environment and the JVM jars (idempotent)
	deploy/bootstrap.sh

run: setup        ## start the whole local stack and the service, fed with market data
	$(VENV)/featurestore run $(ARGS)

test:             ## install what is missing, start the stack, run every test, stop what it started
	deploy/test.sh $(ARGS)

test-secured:     ## the integration tests against a secured stack (TLS, SCRAM, ACL user, tokens) in .stack-secured/
	FEATURESTORE_SECURITY__ENABLED=true FEATURESTORE_DATA_DIR=$${FEATURESTORE_DATA_DIR:-.stack-secured} deploy/test.sh tests/integration $(ARGS)

test-unit: setup  ## the unit tests only (no servers)
	$(VENV)/pytest -n auto tests/unit $(ARGS)

down:             ## stop every server of the local stack
	$(VENV)/featurestore stack down

status:
	$(VENV)/featurestore stack status

bench: setup      ## run every benchmark and write bench/RESULTS.md
	$(VENV)/python -m bench $(ARGS)

chaos: setup      ## the chaos section of bench/RESULTS.md alone (CHAOS_RATE, CHAOS_COMPONENTS)
	$(VENV)/python -m bench chaos

soak: setup       ## the soak section of bench/RESULTS.md alone (SOAK_MINUTES, SOAK_RATE)
	$(VENV)/python -m bench soak

lint: setup       ## ruff and mypy (the SDK too); buf lint, go vet and tsc for proto/ and the Go and TypeScript clients
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy featurestore processors models bench tests registry
	cd clients/python && ../../$(VENV)/mypy src examples  # the SDK, under its own stricter config
	PATH="$$(go env GOPATH)/bin:$$PATH" buf lint
	cd clients/go && go vet ./...
	cd bench/loadgen && go vet ./...
	clients/typescript/node_modules/.bin/tsc --noEmit -p clients/typescript
	clients/typescript/node_modules/.bin/tsc --noEmit -p clients/typescript/tsconfig.test.json  # the client tests

format:
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

proto:            ## regenerate the stubs from proto/: Python's, then Go's and TypeScript's (buf.gen.yaml)
	$(VENV)/python -m featurestore._proto.generate
	PATH="$$(go env GOPATH)/bin:$$PATH" buf generate

clean:            ## stop the stack and delete its data (keeps the resolved jars)
	$(VENV)/featurestore stack down
	d="$${FEATURESTORE_DATA_DIR:-.stack}"; [ ! -d "$$d" ] || \
		find "$$d" -mindepth 1 -maxdepth 1 ! -name jars -exec rm -rf {} +
