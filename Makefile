# The lab's front door. Every target installs and builds what it needs first, so each works from a
# fresh clone. Labs run as plain `node` on the compiled JavaScript: no loader or wrapper process sits
# between your Ctrl-C and the server, and lab 02's children start as fast as Node can start.
#
# Variables (all optional; an unset one leaves the lab's own default, shown by --help):
#   PORT HOST BACKLOG PROTOCOL WORK_US QUIET=1   for lab-01 … lab-04 and client
#   THREADS                                      for lab-03

SHELL := /bin/bash
NODE  := node
TSC   := node_modules/.bin/tsc
VITEST := node_modules/.bin/vitest
TS_RUN := $(NODE) --import tsx

LAB_FLAGS = $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(BACKLOG),--backlog $(BACKLOG)) \
            $(if $(PROTOCOL),--protocol $(PROTOCOL)) $(if $(WORK_US),--work-us $(WORK_US)) $(if $(QUIET),--quiet) \
            $(ARGS)

.PHONY: all install build test lab-01 lab-02 lab-03 lab-04 client clean

all: build

# npm ci installs exactly what package-lock.json pins; the stamp makes it run only when the lock changes.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

build: install
	$(TSC) -p tsconfig.json

# Type-checks the tests and tools too (vitest itself only strips types), then runs the suite.
test: build
	$(TSC) -p tsconfig.test.json
	$(VITEST) run $(VITEST_ARGS)

lab-01: build
	exec $(NODE) dist/labs/01-serial/main.js $(LAB_FLAGS)

lab-02: build
	exec $(NODE) dist/labs/02-process-per-connection/main.js $(LAB_FLAGS)

lab-03: build
	exec $(NODE) dist/labs/03-worker-pool/main.js $(LAB_FLAGS) $(if $(THREADS),--threads $(THREADS))

lab-04: build
	exec $(NODE) dist/labs/04-evented/main.js $(LAB_FLAGS)

client: build
	exec $(NODE) dist/labs/client.js $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

clean:
	rm -rf dist

# The benchmark harness (bench/): measure every lab, write results/bench.json, render results/bench.md.
#   make bench            full run (under 10 minutes on a 2-core machine)
#   make bench QUICK=1    every scenario and lab, short windows (under 90 seconds): checks, not figures
#   make report           re-render results/bench.md from results/bench.json without measuring
#   BENCH_ARGS=...        any further bench option, e.g. BENCH_ARGS="--labs 04-evented --scenarios echo"
# `node --import tsx bench/bench/main.ts --help` lists every option.
BENCH_QUICK = $(filter 1 yes true,$(QUICK))
BENCH_COMMAND = make bench$(if $(BENCH_QUICK), QUICK=$(QUICK))$(if $(BENCH_ARGS), BENCH_ARGS="$(BENCH_ARGS)")

.PHONY: bench report
bench: build
	BENCH_COMMAND='$(BENCH_COMMAND)' $(TS_RUN) bench/bench/main.ts $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)

report: build
	$(TS_RUN) bench/bench/main.ts --render-only $(BENCH_ARGS)

# The backlog experiment (bench/backlog/main.ts): where clients wait while a server is busy, for every lab,
# plus the serial lab at backlog 1, 8 and 128. Writes results/backlog.json, renders results/backlog.md
# (about 30 s). BACKLOG_ARGS=... passes options, e.g. BACKLOG_ARGS="render" re-renders from the JSON
# alone, BACKLOG_ARGS="--hold 5 --clients 8"; `node --import tsx bench/backlog/main.ts --help` lists them.
.PHONY: backlog
backlog: build
	BACKLOG_COMMAND='make backlog$(if $(BACKLOG_ARGS), BACKLOG_ARGS="$(BACKLOG_ARGS)")' $(TS_RUN) bench/backlog/main.ts $(BACKLOG_ARGS)

# The adversarial reliability suite alone (test/robust/: faults, limits, bad input against every
# lab; a few minutes). `make test` runs it too, since vitest picks up every test/**/*.test.ts.
.PHONY: test-robust
test-robust: build
	$(TSC) -p tsconfig.test.json
	$(VITEST) run test/robust

# Soak (not part of `make test` or CI): autocannon plus connection churn against each lab for a set
# time, memory and descriptors over time into results/soak.md (raw samples in results/soak.json).
#   make soak                    60 s per lab (about 5 minutes)
#   make soak SOAK_SECONDS=10    a short check
#   SOAK_ARGS=...                further options, e.g. SOAK_ARGS="--labs 04-evented --churners 8";
#                                `node --import tsx bench/soak/main.ts --help` lists them.
.PHONY: soak
soak: build
	SOAK_COMMAND='make soak$(if $(SOAK_SECONDS), SOAK_SECONDS=$(SOAK_SECONDS))$(if $(SOAK_ARGS), SOAK_ARGS="$(SOAK_ARGS)")' \
	  $(TS_RUN) bench/soak/main.ts $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS)) $(SOAK_ARGS)
