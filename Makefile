# The lab's front door. Every target installs and builds what it needs first, so each works from a
# fresh clone. `make lab-NN` runs labs/run.ts, which finds lab NN in the registry (labs/index.ts),
# turns the variables below into its flags and runs the lab's compiled entry in the same Node
# process: no loader or wrapper process sits between your Ctrl-C and the server, and lab 02's
# children start as fast as Node can start. Recipes print nothing on stdout (build output goes to
# stderr), so `make client < in > out` leaves only the echo in `out`.
#
# Variables (all optional; an unset one leaves the lab's own default, shown by ARGS=--help):
#   PORT HOST BACKLOG PROTOCOL WORK_US QUIET=1 ARGS="..."   for every lab (HOST and PORT for client)
#   each lab's own `makeVariables` in labs/index.ts         e.g. THREADS for lab-03

SHELL := /bin/bash
NODE  := node
TSC   := node_modules/.bin/tsc
VITEST := node_modules/.bin/vitest
TS_RUN := $(NODE) --import tsx

.PHONY: all install build test client clean FORCE

all: build

# npm ci installs exactly what package-lock.json pins; the stamp makes it run only when the lock changes.
node_modules/.package-lock.json: package-lock.json
	@npm ci --no-audit --no-fund 1>&2
	@touch $@

install: node_modules/.package-lock.json

# tsc runs only when a source file or the config changed: with nothing changed, `make lab-04` is
# make's own check of these dates (10 to 20 ms here) and the lab's start-up. `tsc -b` with build
# info would work too, but its no-op check alone starts a compiler (0.2 to 1.2 s here).
SOURCES := $(shell find labs shared bench -name '*.ts' ! -name '*.test.ts' ! -path '*/node_modules/*')
BUILD_STAMP := dist/.build-stamp

$(BUILD_STAMP): $(SOURCES) tsconfig.json node_modules/.package-lock.json
	@$(TSC) -p tsconfig.json 1>&2
	@touch $@

build: $(BUILD_STAMP)

# Type-checks the tests and tools too (vitest itself only strips types), then runs the suite.
test: build
	$(TSC) -p tsconfig.test.json
	$(VITEST) run $(VITEST_ARGS)

# make lab-01 … make lab-NN: whatever labs/index.ts lists (an unknown number gets one line, exit 2).
lab-%: build FORCE
	@exec $(NODE) dist/labs/run.js $*

client: build
	@exec $(NODE) dist/labs/client.js $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

clean:
	rm -rf dist

# The benchmark harness (bench/): measure every lab, write results/bench.json, render results/bench.md.
#   make bench            full run (under 10 minutes on a 2-core machine)
#   make bench QUICK=1    every scenario and lab, short windows (under 90 seconds): checks, not figures
#   make report           re-render results/bench.md from results/bench.json without measuring
#   BENCH_ARGS=...        any further bench option, e.g. BENCH_ARGS="--labs 04-evented --scenarios echo"
# `node --import tsx bench/main.ts --help` lists every option.
BENCH_QUICK = $(filter 1 yes true,$(QUICK))
BENCH_COMMAND = make bench$(if $(BENCH_QUICK), QUICK=$(QUICK))$(if $(BENCH_ARGS), BENCH_ARGS="$(BENCH_ARGS)")

.PHONY: bench report
bench: build
	BENCH_COMMAND='$(BENCH_COMMAND)' $(TS_RUN) bench/main.ts $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)

report: build
	$(TS_RUN) bench/main.ts --render-only $(BENCH_ARGS)

# The backlog experiment (bench/backlog.ts): where clients wait while a server is busy, for every lab,
# plus the serial lab at backlog 1, 8 and 128. Writes results/backlog.json, renders results/backlog.md
# (about 30 s). BACKLOG_ARGS=... passes options, e.g. BACKLOG_ARGS="render" re-renders from the JSON
# alone, BACKLOG_ARGS="--hold 5 --clients 8"; `node --import tsx bench/backlog.ts --help` lists them.
.PHONY: backlog
backlog: build
	BACKLOG_COMMAND='make backlog$(if $(BACKLOG_ARGS), BACKLOG_ARGS="$(BACKLOG_ARGS)")' $(TS_RUN) bench/backlog.ts $(BACKLOG_ARGS)

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
#                                `node --import tsx bench/soak.ts --help` lists them.
.PHONY: soak
soak: build
	SOAK_COMMAND='make soak$(if $(SOAK_SECONDS), SOAK_SECONDS=$(SOAK_SECONDS))$(if $(SOAK_ARGS), SOAK_ARGS="$(SOAK_ARGS)")' \
	  $(TS_RUN) bench/soak.ts $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS)) $(SOAK_ARGS)
