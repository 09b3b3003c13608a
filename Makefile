# fluvial — two commands for a newcomer: `make demo` and `make test`.
# Needs Python 3.11+ (and, for `make test` and the Kafka targets, Java 17+ and Maven).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo demo-cluster demo-wordcount demo-dashboard test test-unit test-integration lint kafka-fetch kafka-up \
        kafka-up-cluster kafka-down kafka-status registry-fetch clean check-python bench bench-smoke bench-java chaos \
        conformance conformance-oracle nexmark nexmark-smoke browser helm

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || \
	  { echo "fluvial needs Python 3.11 or newer as '$(PYTHON)' (set PYTHON=/path/to/python3.11)"; exit 1; }

$(STAMP): pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## The main job: the talk's airline flight-delay demo on the embedded broker (nothing else
## to install): train or reuse the model, run the microservice, replay the flights, summary.
## DEMO_ARGS='--bootstrap-servers localhost:9092 --workers 3' runs it on a real cluster.
DEMO_ARGS ?=
demo: $(STAMP)
	$(PY) -m examples.airline.demo $(DEMO_ARGS)

## The talk's set-up on a local real Kafka: 3 nodes, 10 partitions, replication 3, 5 instances
## of the microservice; one is SIGKILLed mid-run, the others take over; every flight scored once.
demo-cluster: $(STAMP) kafka-fetch
	$(PY) -m examples.airline.demo_cluster $(DEMO_CLUSTER_ARGS)

## WordCount, the talk's first example, on the embedded broker.
demo-wordcount: $(STAMP)
	$(PY) -m examples.wordcount.demo

## The live dashboard: two instances on the embedded broker, fed orders until Ctrl-C;
## open http://127.0.0.1:8080/dashboard.
demo-dashboard: $(STAMP)
	$(PY) -m examples.dashboard.demo

## Lint, type-check, unit tests, the short conformance suite, then integration tests on a
## real Kafka broker, a real schema registry and headless Chromium that the tests start (and
## stop) themselves.
test: $(STAMP) kafka-fetch registry-fetch conformance-oracle browser helm lint
	$(PY) tools/run_pytest.py tests $(PYTEST_ARGS)

test-unit: $(STAMP) helm
	$(PY) tools/run_pytest.py tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP) kafka-fetch registry-fetch browser
	$(PY) tools/run_pytest.py tests/integration $(PYTEST_ARGS)

## helm, for the chart's test (tests/unit/deploy/test_deploy_helm.py renders deploy/helm/fluvial
## with it): built once from the Go module proxy into .tools/ (about 3 minutes, needs Go).
HELM_VERSION := v3.21.4
HELM         := .tools/helm-$(HELM_VERSION)/helm
$(HELM):
	@command -v go >/dev/null 2>&1 || { echo "helm is built from source with Go: install Go 1.24+ (or put helm $(HELM_VERSION) at $(HELM))"; exit 1; }
	GOBIN=$(abspath $(dir $(HELM))) GOFLAGS=-mod=mod go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
helm: $(HELM)

## The dashboard's browser test (tests/integration/test_dashboard_browser.py) drives the OS's
## headless Chromium through its chromedriver: installed from the OS packages when missing.
CHROMIUM     := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "the dashboard's browser test needs $(CHROMIUM) and $(CHROMEDRIVER): install Chromium and its driver from your OS's packages"; exit 1; fi; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	echo "installing chromium and chromium-driver (apt-get) for the dashboard's browser test"; \
	{ $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  { echo "could not install chromium and chromium-driver with apt-get; install them by hand ($(CHROMIUM), $(CHROMEDRIVER))"; exit 1; }; \
	[ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ] || \
	  { echo "apt-get installed chromium, yet $(CHROMIUM) or $(CHROMEDRIVER) is missing"; exit 1; }

## Conformance with Java Kafka Streams (docs/conformance.md): the oracle is a small Java
## program on Kafka Streams' TopologyTestDriver, built once with Maven into
## tools/conformance/target; `make conformance` runs every case on more seeds and inputs.
CONFORMANCE_ORACLE := tools/conformance/target/.built
$(CONFORMANCE_ORACLE): tools/conformance/pom.xml $(wildcard tools/conformance/src/main/java/dev/fluvial/conformance/*.java)
	@command -v mvn >/dev/null 2>&1 || { echo "the conformance oracle (tools/conformance) is built with Maven: install Maven (mvn) and Java 17+"; exit 1; }
	@command -v java >/dev/null 2>&1 || { echo "the conformance oracle needs Java 17+ (java on PATH)"; exit 1; }
	mvn -q -f tools/conformance/pom.xml package -DskipTests
	@touch $@

conformance-oracle: $(CONFORMANCE_ORACLE)

conformance: $(STAMP) $(CONFORMANCE_ORACLE)
	FLUVIAL_CONFORMANCE=full $(PY) tools/run_pytest.py tests/conformance $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests tools examples
	$(VENV)/bin/mypy

## The chaos suite's long form (tests/chaos): WordCount on 3 instances and a 3-node cluster,
## 300,000 lines, 15 instance kills -9, a SIGTERM, a broker kill -9 (BROKER=leader|follower).
## `make chaos GUARANTEE=at_least_once SEED=7 STANDBYS=1`; figures are appended to
## chaos-results.jsonl.
GUARANTEE ?= exactly_once
SEED      ?= 1
BROKER    ?= leader
STANDBYS  ?= 0
chaos: $(STAMP) kafka-fetch
	CHAOS_SIZE=long CHAOS_GUARANTEE=$(GUARANTEE) CHAOS_SEED=$(SEED) CHAOS_BROKER=$(BROKER) \
	  CHAOS_STANDBYS=$(STANDBYS) \
	  CHAOS_RESULTS=$(CURDIR)/chaos-results.jsonl \
	  $(PY) tools/run_pytest.py tests/chaos -m chaos -s $(PYTEST_ARGS)

## A real Kafka broker by hand: jars from Maven Central, cached under .kafka/.
kafka-fetch: $(STAMP)
	$(PY) tools/kafka_cluster.py fetch

kafka-up: kafka-fetch
	$(PY) tools/kafka_cluster.py up

kafka-up-cluster: kafka-fetch
	$(PY) tools/kafka_cluster.py up --nodes 3

kafka-down:
	$(PY) tools/kafka_cluster.py down

kafka-status:
	$(PY) tools/kafka_cluster.py status

## A real schema registry (Apicurio Registry, Confluent-compatible API) for the Avro / JSON
## Schema / Protobuf serdes: built once from Maven Central by a Quarkus build, cached under .kafka/.
registry-fetch: $(STAMP)
	$(PY) tools/schema_registry.py fetch

## Benchmarks (issue 5; bench/README.md): fluvial against the bare client, Quix Streams, Faust
## and Java Kafka Streams on a local broker. The peers get their own venv, bench/.venv.
BENCH_VENV  := bench/.venv
BENCH_PY    := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_TOOLS := matplotlib==3.11.2 psutil==7.2.2 py-spy==0.4.3
BENCH_PEERS := quixstreams==3.28.1 faust-streaming==0.15.3
BENCH_ARGS  ?=

$(BENCH_STAMP): pyproject.toml | check-python
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e ".[ml,models]" $(BENCH_TOOLS)
	@for p in $(BENCH_PEERS); do $(BENCH_PY) -m pip install --quiet $$p || \
	  echo "bench: could not install $$p; it will be reported unavailable"; done
	@touch $(BENCH_STAMP)

bench-java:
	@mvn -q -f bench/java/pom.xml package -DskipTests || \
	  echo "bench: Java Kafka Streams did not build; it will be reported unavailable"

bench: $(BENCH_STAMP) bench-java
	$(BENCH_PY) tools/kafka_cluster.py fetch
	$(BENCH_PY) -m bench --profile $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP) bench-java
	$(BENCH_PY) tools/kafka_cluster.py fetch
	$(BENCH_PY) -m bench --smoke $(BENCH_ARGS)

## Nexmark (issue 14; bench/nexmark/README.md) on a real broker: fluvial (1 worker), Java Kafka
## Streams, Quix Streams (q0-q2) and the bare client (q0-q2), every output checked against the
## plain-Python reference; results under bench/results/<timestamp>/. `make nexmark Q=q5` runs one
## query, `Q="q3 q8"` several; NEXMARK_ARGS="--scale 0.25 --repeat 1" a shorter run.
NEXMARK_QUERIES := q0 q1 q2 q3 q4 q5 q7 q8
Q ?= $(NEXMARK_QUERIES)
NEXMARK_ARGS ?=
comma := ,
empty :=
space := $(empty) $(empty)
nexmark: $(BENCH_STAMP) bench-java
	$(BENCH_PY) tools/kafka_cluster.py fetch
	$(BENCH_PY) -m bench --systems fluvial-1w,java,quix,ceiling \
	  --workloads $(subst $(space),$(comma),$(addprefix nexmark-,$(strip $(Q)))) $(NEXMARK_ARGS)

## Nexmark smoke (issue 14): generator speed, q0-q5, q7, q8 in the TestDriver,
## q0-q2 on a real broker, every output checked against the plain-Python reference (~1-2 min).
nexmark-smoke: $(STAMP) kafka-fetch
	$(PY) -m bench.nexmark speed --events 100000
	$(PY) -m bench.nexmark smoke --events 5000
	$(PY) tools/run_pytest.py tests/unit/nexmark tests/integration/test_nexmark_smoke.py $(PYTEST_ARGS)

clean:
	-$(PY) tools/kafka_cluster.py down 2>/dev/null
	rm -rf $(VENV) .kafka .pytest_cache .mypy_cache .ruff_cache tools/conformance/target tools/registry/target
