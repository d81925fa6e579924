# M4SH backend. Two commands on a fresh machine: `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
# cmd/wsbench: 50 rooms x 20 users at 20 Hz, then 10,000 idle connections (issue 4).
WSBENCH_FLAGS ?= -rooms 50 -users 20 -hz 20 -duration 10s -idle 10000
# Scale-out (issue 9): 25 rooms x 20 users at 20 Hz on one node (in-process fan-out), one
# node over NATS, and two nodes over NATS with each room's users spread over both.
WSBENCH_CLUSTER_FLAGS ?= -rooms 25 -users 20 -hz 20 -duration 10s -idle 0 -targets m4sh,m4sh-nats1,m4sh-nats2
BIN       := bin/m4sh
DEV_DATA  := .data/pg
TEST_DATA := .data/pgtest
# Benchmarks run on a cluster with production durability (fsync, synchronous_commit and
# full_page_writes on; see scripts/pgcluster.sh), never the fast test cluster, unless
# BENCH_CLUSTER=fast asks for the fast one (for side-by-side figures). BENCH_DATABASE_URL
# overrides both with a server of your own.
BENCH_DATA    := .data/pgbench
BENCH_CLUSTER ?= durable
BENCH_DIR_durable := $(BENCH_DATA)
BENCH_DIR_fast    := $(TEST_DATA)
# Dev-only secret for `make run`; production sets AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY_FILE.
DEV_SECRET := m4sh-dev-secret-not-for-production-0123456789

.PHONY: help
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

NODE_TOOLS := scripts/node/node_modules/.bin
NODE_STAMP := scripts/node/node_modules/.installed
TS_STAMP   := gen/ts/node_modules/.installed
# Generated copies of the built TypeScript package that the binary embeds for /demo/.
DEMO_LIB   := internal/demo/assets/lib

.PHONY: generate
generate: $(NODE_STAMP) $(TS_STAMP) ## regenerate gen/ (Go server, Go client, sqlc, TypeScript package) and the demo's copy of it
	$(GO) tool oapi-codegen -config oapi-codegen.yaml openapi/openapi.yaml
	$(GO) tool oapi-codegen -config oapi-codegen-client.yaml openapi/openapi.yaml
	rm -f gen/db/*.go # sqlc writes every file anew but leaves those of removed queries behind
	$(GO) tool sqlc generate
	node scripts/node/gen-ts.mjs
	rm -rf gen/ts/dist && (cd gen/ts && node_modules/.bin/tsc -p .)
	rm -rf $(DEMO_LIB) && mkdir -p $(DEMO_LIB)/m4sh && cp -R gen/ts/dist/. $(DEMO_LIB)/m4sh/ && find $(DEMO_LIB) -name '*.d.ts' -delete
	rm $(DEMO_LIB)/m4sh/react.js # the React bindings import react, which the demo does not load
	cp gen/ts/node_modules/openapi-fetch/dist/index.mjs $(DEMO_LIB)/openapi-fetch.js
	sed -i 's#from "openapi-fetch"#from "../openapi-fetch.js"#' $(DEMO_LIB)/m4sh/rest.js
	sed -i '/^\/\/# sourceMappingURL=/d' $(DEMO_LIB)/openapi-fetch.js

$(NODE_STAMP): scripts/node/package.json scripts/node/package-lock.json
	cd scripts/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(TS_STAMP): gen/ts/package.json
	cd gen/ts && npm install --no-audit --no-fund --loglevel=error
	@touch $@

# The npm package as a tarball (name and semver from gen/ts/package.json, whose version
# `make generate` takes from the specs' info.version): `npm install ./bin/m4sh-client-X.Y.Z.tgz`
# installs a copy with its dependency, which later plain `npm install`s keep.
.PHONY: sdk
sdk: ## pack gen/ts (@m4sh/client, with its built dist) into bin/m4sh-client-<version>.tgz
	@mkdir -p bin && cd gen/ts && npm pack --silent --pack-destination ../../bin | sed 's#^#bin/#'

# The /docs renderers (internal/docs/assets/vendor, committed, embedded in the binary): the
# prebuilt browser bundles of the npm packages pinned in scripts/docs (its lockfile). Redoc's
# one outside URL (its logo in the sidebar footer) is replaced by an empty image so the page
# loads nothing from elsewhere.
DOCS_VENDOR := internal/docs/assets/vendor
DOCS_NM     := scripts/docs/node_modules

.PHONY: docs-assets
docs-assets: ## refresh internal/docs/assets/vendor from the renderer versions pinned in scripts/docs
	cd scripts/docs && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts --legacy-peer-deps
	rm -rf $(DOCS_VENDOR) && mkdir -p $(DOCS_VENDOR)
	cp $(DOCS_NM)/redoc/bundles/redoc.standalone.js $(DOCS_VENDOR)/redoc.standalone.js
	cp $(DOCS_NM)/redoc/LICENSE $(DOCS_VENDOR)/redoc.LICENSE
	cp $(DOCS_NM)/redoc/bundles/redoc.standalone.js.LICENSE.txt $(DOCS_VENDOR)/redoc.standalone.js.LICENSE.txt
	sed -i 's#"https://cdn.redoc.ly/redoc/logo-mini.svg"#"data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E"#; /^\/\/# sourceMappingURL=/d' $(DOCS_VENDOR)/redoc.standalone.js
	cp $(DOCS_NM)/@asyncapi/react-component/browser/standalone/index.js $(DOCS_VENDOR)/asyncapi.standalone.js
	cp $(DOCS_NM)/@asyncapi/react-component/browser/standalone/index.js.LICENSE.txt $(DOCS_VENDOR)/asyncapi.standalone.js.LICENSE.txt
	cp $(DOCS_NM)/@asyncapi/react-component/LICENSE $(DOCS_VENDOR)/asyncapi.LICENSE
	cp $(DOCS_NM)/@asyncapi/react-component/styles/default.min.css $(DOCS_VENDOR)/asyncapi.min.css
	sed -i '/^\/\/# sourceMappingURL=/d' $(DOCS_VENDOR)/asyncapi.standalone.js
	node -e 'for (const p of ["redoc", "@asyncapi/react-component"]) console.log(p, require("./$(DOCS_NM)/" + p + "/package.json").version)' > $(DOCS_VENDOR)/VERSIONS

.PHONY: build
build: ## build bin/m4sh
	$(GO) build -o $(BIN) ./cmd/m4sh

.PHONY: run
# With the dev secret it also turns on DEV_TOKENS, the demo's sign-in picker (dev only;
# serve refuses it with any other secret; DEV_TOKENS=0 turns it off).
run: build ## run the service on :8080 with a private PostgreSQL under .data (DATABASE_URL overrides)
	@url="$${DATABASE_URL:-$$(scripts/pgcluster.sh start $(DEV_DATA) m4sh)}"; \
	export DATABASE_URL="$$url" AUTH_JWT_SECRET="$${AUTH_JWT_SECRET:-$(DEV_SECRET)}" LOG_FORMAT="$${LOG_FORMAT:-text}"; \
	if [ "$$AUTH_JWT_SECRET" = "$(DEV_SECRET)" ]; then export DEV_TOKENS="$${DEV_TOKENS:-1}"; fi; \
	$(BIN) migrate up; \
	echo "mint a token:  AUTH_JWT_SECRET=$$AUTH_JWT_SECRET $(BIN) token -user alice -name Alice"; \
	echo "live demo:     http://localhost$${HTTP_ADDR:-:8080}/demo/  (pick a dev user; or paste tokens from: make -s token USER_ID=alice NAME=Alice)"; \
	exec $(BIN) serve

# make run-cluster: an embedded NATS server (cmd/devnats) and two nodes sharing the dev
# database, on CLUSTER_PORTS; Ctrl-C stops all three.
NATS_PORT     ?= 14222
CLUSTER_PORTS ?= 8081 8082

.PHONY: run-cluster
run-cluster: build ## run NATS + two nodes (:8081, :8082) on the dev database; watch cursors cross nodes
	@$(GO) build -o bin/devnats ./cmd/devnats
	@url="$${DATABASE_URL:-$$(scripts/pgcluster.sh start $(DEV_DATA) m4sh)}"; \
	export DATABASE_URL="$$url" AUTH_JWT_SECRET="$${AUTH_JWT_SECRET:-$(DEV_SECRET)}" LOG_FORMAT="$${LOG_FORMAT:-text}" \
	  PUBSUB=nats NATS_URL="nats://127.0.0.1:$(NATS_PORT)"; \
	$(BIN) migrate up; \
	pids=(); trap 'kill $${pids[@]} 2>/dev/null; wait' EXIT INT TERM; \
	bin/devnats -port $(NATS_PORT) & pids+=($$!); \
	for p in $(CLUSTER_PORTS); do HTTP_ADDR="127.0.0.1:$$p" $(BIN) serve & pids+=($$!); done; \
	echo "nodes: $(CLUSTER_PORTS); mint a token:  make -s token USER_ID=alice"; \
	wait -n

# make token USER_ID=bob NAME=Bob TTL=10m; a negative TTL (e.g. -1h) mints an expired token,
# for testing 401 token_expired and the WebSocket's 4401 close.
TTL ?= 1h

.PHONY: token
token: build ## mint a dev token for USER_ID (default alice), NAME, TTL (default 1h; negative = expired) with the dev secret
	@AUTH_JWT_SECRET="$${AUTH_JWT_SECRET:-$(DEV_SECRET)}" $(BIN) token -user "$${USER_ID:-alice}" -name "$${NAME:-Alice}" -ttl "$(TTL)"

.PHONY: db-url
db-url: ## print the database URL `make run` uses (starts its private PostgreSQL if needed), for m4sh quota/gc/migrate
	@echo "$${DATABASE_URL:-$$(scripts/pgcluster.sh start $(DEV_DATA) m4sh)}"

.PHONY: test
test: ## run every test against a private throwaway PostgreSQL (TEST_DATABASE_URL overrides)
	@url="$${TEST_DATABASE_URL:-$$(scripts/pgcluster.sh start $(TEST_DATA) m4sh --fast)}"; \
	TEST_DATABASE_URL="$$url" $(GO) test -count=1 -timeout 20m $(TESTFLAGS) ./...

.PHONY: bench
bench: ## run benchmarks and load drivers against same-run baselines on the durable cluster (BENCH_CLUSTER=fast: the test one); prints ratios
	@test -n "$(BENCH_DIR_$(BENCH_CLUSTER))" || { echo "BENCH_CLUSTER must be durable or fast"; exit 2; }
	@url="$${BENCH_DATABASE_URL:-$$(scripts/pgcluster.sh start $(BENCH_DIR_$(BENCH_CLUSTER)) m4sh --$(BENCH_CLUSTER))}"; \
	where=$${BENCH_DATABASE_URL:+BENCH_DATABASE_URL}; \
	echo "bench: PostgreSQL $${where:-$(BENCH_CLUSTER) cluster in $(BENCH_DIR_$(BENCH_CLUSTER))}, load average $$(cut -d' ' -f1-3 /proc/loadavg)" | tee .data/bench.txt; \
	TEST_DATABASE_URL="$$url" $(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m ./... | tee -a .data/bench.txt; \
	$(GO) build -o bin/wsbench ./cmd/wsbench; \
	TEST_DATABASE_URL="$$url" bin/wsbench $(WSBENCH_FLAGS) | tee -a .data/bench.txt; \
	TEST_DATABASE_URL="$$url" bin/wsbench $(WSBENCH_CLUSTER_FLAGS) | tee -a .data/bench.txt; \
	$(GO) run ./cmd/benchreport < .data/bench.txt

# Fuzz targets of the request decoders; their committed seed corpora (testdata/fuzz) already
# run as ordinary tests in `make test`. `make fuzz` explores beyond them, FUZZTIME per target.
FUZZTIME    ?= 10s
FUZZ_TARGETS := internal/httpapi:FuzzStrictJSON internal/page:FuzzDecode internal/clienttext:FuzzUserID

.PHONY: fuzz
fuzz: ## run each request-decoder fuzz target for FUZZTIME (default 10s)
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}/ || exit 1; \
	done

.PHONY: check-generated
check-generated: generate ## fail when gen/ is not what the specs and queries generate
	@git diff --exit-code --stat -- gen/ $(DEMO_LIB) || { echo "gen/ is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/ $(DEMO_LIB))" || { git status --porcelain -- gen/ $(DEMO_LIB); echo "gen/ has untracked generated files"; exit 1; }

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

.PHONY: lint-spec
lint-spec: $(NODE_STAMP) $(TS_STAMP) ## lint openapi/ (Redocly, zero errors), validate asyncapi/, type-check gen/ts
	REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_TELEMETRY=off $(NODE_TOOLS)/redocly lint openapi/openapi.yaml 2>&1 | grep -v '[║╔╚]'
	node scripts/node/asyncapi-validate.mjs asyncapi/asyncapi.yaml
	cd gen/ts && node_modules/.bin/tsc -p . --noEmit

# Prometheus alerts and recording rules (deploy/prometheus): syntax and promtool unit tests.
.PHONY: rules-test
rules-test: ## check deploy/prometheus rules and run their promtool unit tests (installs promtool)
	@promtool=$$(scripts/ops-deps.sh promtool); \
	$$promtool check config deploy/prometheus/prometheus.yml; \
	cd deploy/prometheus && $$promtool test rules m4sh.rules.test.yml

# Container image (README: Operations / runbook): buildah, no daemon, storage under .data/containers.
.PHONY: image
image: ## build the container image with buildah (static binary FROM scratch, non-root); prints its name
	@scripts/image.sh

.PHONY: image-test
image-test: ## build the image, then run --version, migrate and serve from its mounted root filesystem
	@scripts/image-test.sh

.PHONY: ci
ci: check-generated lint lint-spec rules-test test ## what .ci/run runs

.PHONY: db-stop
db-stop: ## stop the private PostgreSQL clusters (data kept under .data)
	scripts/pgcluster.sh stop $(DEV_DATA); scripts/pgcluster.sh stop $(TEST_DATA); scripts/pgcluster.sh stop $(BENCH_DATA)

.PHONY: clean
clean: db-stop ## remove build output and the private clusters
	rm -rf bin .data
