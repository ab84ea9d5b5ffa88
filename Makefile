# The lab's front door. Every target installs and builds what it needs first, so each works from a
# fresh clone. `make lab-NN` runs labs/run.ts, which finds lab NN in the registry (labs/index.ts),
# turns the variables below into its flags and runs the lab's compiled entry in the same Node
# process: no loader or wrapper process sits between your Ctrl-C and the server, and lab 02's
# children start as fast as Node can start. Recipes print nothing on stdout (build output goes to
# stderr), so `make client < in > out` leaves only the echo in `out`.
#
# Variables (all optional; an unset one leaves the lab's own default, shown by ARGS=--help):
#   PORT HOST BACKLOG PROTOCOL WORK_US QUIET=1 ARGS="..."   for every lab (HOST and PORT for client)
#   SANDBOX=1 (or SANDBOX=kill)                            a seccomp allow-list once the lab listens (shared/sandbox.ts)
#   each lab's own `makeVariables` in labs/index.ts         e.g. THREADS for lab-03

SHELL := /bin/bash
NODE  := node
TSC   := node_modules/.bin/tsc
VITEST := node_modules/.bin/vitest
TS_RUN := $(NODE) --import tsx

.PHONY: all help install build test client probe clean FORCE

# No built-in rules: without them `make lab-` looked for lab-.o and ran lab `.o`.
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:

# Plain `make` (and `make help`): the labs, the variables and every target below with a `## ` note.
.DEFAULT_GOAL := help
help: build ## this list
	@$(NODE) dist/labs/help.js Makefile

all: build

# npm ci installs exactly what package-lock.json pins; the stamp makes it run only when the lock changes.
node_modules/.package-lock.json: package-lock.json
	@npm ci --no-audit --no-fund 1>&2
	@touch $@

install: node_modules/.package-lock.json

# tsc runs only when a source file or the config changed: with nothing changed, `make lab-04` is
# make's own check of these dates (10 to 20 ms here) and the lab's start-up. `tsc -b` with build
# info would work too, but its no-op check alone starts a compiler (0.2 to 1.2 s here).
SOURCES := $(shell find labs shared bench harness tools exercises/checker -name '*.ts' ! -name '*.test.ts' ! -path '*/node_modules/*')
BUILD_STAMP := dist/.build-stamp

$(BUILD_STAMP): $(SOURCES) tsconfig.json node_modules/.package-lock.json
	@$(TSC) -p tsconfig.json 1>&2
	@touch $@

build: $(BUILD_STAMP) ## npm ci (when the lockfile changed) and tsc

# Type-checks the tests and tools too (vitest itself only strips types), then runs the suite.
# scripts/system-deps first: the system tools the tests need (strace, cc, ...), installed with
# apt-get as root where missing, else one line naming them and how to install them (exit 2).
test: build ## type-check and run every test (about 7 minutes)
	@scripts/system-deps
	$(TSC) -p tsconfig.test.json
	$(VITEST) run $(VITEST_ARGS)

# make lab-01 … make lab-NN: whatever labs/index.ts lists (an unknown number gets one line, exit 2).
lab-%: build FORCE
	@exec $(NODE) dist/labs/run.js $*

# `make lab-` with no number: the same one line as an unknown number, exit 2.
lab-: build
	@exec $(NODE) dist/labs/run.js ''

client: build ## a line client (HOST PORT; pipe a file in to send it)
	@exec $(NODE) dist/labs/client.js $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# A health probe of a running lab (labs/probe.ts): one line, exit status 0 green, 1 red.
#   make probe PORT=8080 [HOST=...] [PROBE=tcp|echo|http] [ARGS="--deadline-ms 500"]
probe: build ## probe a running lab: PORT, PROBE=tcp|echo|http (one line, exit 0 green, 1 red)
	@exec $(NODE) dist/labs/probe.js $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(PROBE),--kind $(PROBE)) $(ARGS)

clean: ## remove dist/
	rm -rf dist

# The experiments (bench/): each is one folder, bench/NAME/main.ts, that measures, writes
# results/NAME.json and renders results/NAME.md from that file alone (the benchmark's folder is
# bench/servers/: every server under the same load; its target and report keep the name bench).
# One shape for all of them:
#   make NAME               full run: the committed results/NAME.{json,md}
#   make NAME QUICK=1       short run to check everything works: results/quick/ (ignored by git)
#   NAME_ARGS=...           further options; `node --import tsx bench/NAME/main.ts --help` lists them,
#                           e.g. NAME_ARGS=--render-only re-renders the report from its JSON alone
# bench:   every lab, plain Node and the C reference under the same load (about 30 minutes; quick about a minute);
#          `make report` re-renders results/bench.md, e.g. BENCH_ARGS="--labs 04-evented --scenarios echo"
# backlog: where clients wait while a server is busy (about 30 s), e.g. BACKLOG_ARGS="--hold 5 --clients 8"
EXPERIMENT_QUICK = $(filter 1 yes true,$(QUICK))
# The command as the user typed it, for the report's stamp.
experiment_command = make $(1)$(if $(EXPERIMENT_QUICK), QUICK=$(QUICK))$(if $(2), $(3)="$(2)")
experiment_folder = bench/$(if $(filter bench,$(1)),servers,$(1))
run_experiment = EXPERIMENT_COMMAND='$(call experiment_command,$(1),$(2),$(3))$(4)' \
	  $(TS_RUN) $(call experiment_folder,$(1))/main.ts $(if $(EXPERIMENT_QUICK),--quick) $(5) $(2)

.PHONY: bench report backlog
bench: build ## every lab, plain Node and C, one load (BENCH_ARGS; 30 min)
	$(call run_experiment,bench,$(BENCH_ARGS),BENCH_ARGS)

report: build ## re-render results/bench.md from its JSON
	$(TS_RUN) bench/servers/main.ts --render-only $(if $(EXPERIMENT_QUICK),--quick) $(BENCH_ARGS)

backlog: build ## where clients wait while a server is busy (30 s)
	$(call run_experiment,backlog,$(BACKLOG_ARGS),BACKLOG_ARGS)

# The adversarial reliability suite alone (test/robust/: faults, limits, bad input against every
# lab; a few minutes). `make test` runs it too, since vitest picks up every test/**/*.test.ts.
.PHONY: test-robust
test-robust: build ## test/robust/ alone: faults, limits, bad input
	@scripts/system-deps
	$(TSC) -p tsconfig.test.json
	$(VITEST) run test/robust

# Soak (not part of `make test` or CI): autocannon plus connection churn against each lab for a set
# time, memory and descriptors over time into results/soak.md (raw samples in results/soak.json).
#   make soak                    60 s per lab (about 5 minutes)
#   make soak QUICK=1            5 s per lab, into results/quick/
#   make soak SOAK_SECONDS=10    ten seconds per lab
#   SOAK_ARGS=...                further options, e.g. SOAK_ARGS="--labs 04-evented --churners 8"
.PHONY: soak
soak: build ## load and churn per lab, memory over time (5 minutes)
	$(call run_experiment,soak,$(SOAK_ARGS),SOAK_ARGS,$(if $(SOAK_SECONDS), SOAK_SECONDS=$(SOAK_SECONDS)),$(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS)))

# syscalls: system calls (strace -f -c) and context switches per round trip and per connection, for
#           every lab, plain Node and the C reference (about a minute), e.g. SYSCALLS_ARGS="--round-trips 500"
# nagle:    Nagle's algorithm, delayed ACKs and TCP_NODELAY: small writes and split writes (about 30 s)
# balance:  lab 06's --balance policies: connections per worker, a stalled loop, requests/s by workers
#           (about 3 minutes; quick under a minute), e.g. BALANCE_ARGS="--stall-requests 20 --scaling-seconds 10"
.PHONY: syscalls nagle balance
syscalls: build ## system calls per round trip, with strace (a minute)
	$(call run_experiment,syscalls,$(SYSCALLS_ARGS),SYSCALLS_ARGS)

nagle: build ## Nagle, delayed ACKs and TCP_NODELAY (30 s)
	$(call run_experiment,nagle,$(NAGLE_ARGS),NAGLE_ARGS)

balance: build ## lab 06's --balance policies (3 minutes)
	$(call run_experiment,balance,$(BALANCE_ARGS),BALANCE_ARGS)

# harden:  results/hardening.md: per lab, its seccomp allow-list against the system calls it makes
#          under load (strace), what its sandbox refuses, health probes (tcp against echo: idle,
#          busy, blocked by --work-us, draining) and perf stat per round trip; then TSYNC, io_uring
#          past seccomp, port 80 with only CAP_NET_BIND_SERVICE, a lab behind a veth pair, the systemd
#          unit's score. Parts the machine does not allow (root, strace, perf, io_uring) are skipped
#          with one line each. e.g. HARDEN_ARGS="--labs 04-evented,07-completion --rounds 5"
.PHONY: harden
harden: build ## hardening per model: seccomp lists, probes, perf stat, port 80, a veth pair (root for all)
	$(call run_experiment,harden,$(HARDEN_ARGS),HARDEN_ARGS)

# A live view of one port (tools/watch/): the accept queue against its backlog, every connection by
# where it waits, the server's processes found from the listening socket. Redraws until q or Ctrl-C.
#   make watch PORT=8080 [HOST=127.0.0.1] [ARGS="--interval 500"]
.PHONY: watch
watch: build ## one port live: accept queue, connections (PORT)
	@$(NODE) dist/tools/watch/main.js $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST)) $(ARGS)

# A socket's life, one system call at a time (tools/lifecycle/): socket, bind, listen, connect, accept,
# read/write, close, with /proc/self/fd, /proc/net/tcp and ss after each step, then two pitfalls
# (EPIPE/SIGPIPE, EADDRINUSE in TIME_WAIT). Press Enter for each step; ARGS=--auto runs straight
# through (about 800 lines: `make lifecycle ARGS=--auto | less` pages them); ARGS='--port N' binds N
# instead of a port the kernel picks. Linux only.
.PHONY: lifecycle
lifecycle: build ## a socket's life, one system call at a time (ARGS=--auto)
	@$(NODE) dist/tools/lifecycle/main.js $(ARGS)

# limits: each lab in a cgroup it makes and removes: the same paced load under CPU quotas of 1, 0.5
#         and 0.25 core at a 100 ms and a 10 ms period, then clients added under a 256 MiB memory
#         cap (about 9 minutes; quick about 3). Needs root or a delegated cgroup (without one: one
#         line, exit 2), e.g. LIMITS_ARGS="--labs 02-process-per-connection 04-evented --parts memory"
.PHONY: limits
limits: build ## each lab under CPU quotas and a memory cap (9 min)
	$(call run_experiment,limits,$(LIMITS_ARGS),LIMITS_ARGS)

# chat: the chat room (PROTOCOL=chat) in every lab: fan-out latency, delivered messages/s and CPU per
#       delivery for rooms of 10, 100 and 1,000 with 1 and 10 senders, and a member that never reads
#       (about 7 minutes; quick under 2), e.g. CHAT_ARGS="--labs 04-evented,06-loop-per-core --seconds 5"
.PHONY: chat
chat: build ## the chat room in every lab: fan-out, CPU (7 min)
	$(call run_experiment,chat,$(CHAT_ARGS),CHAT_ARGS)

# files: static files from every lab, sendfile(2) against read/write: requests/s, MB/s, CPU per MiB and
#        system calls per request for 4 KiB, 1 MiB and 64 MiB files at 1 and 50 connections, with wrk;
#        then a small file's latency beside a 256 MiB download from the disk, against from the cache
#        (about 10 minutes; quick about 5), e.g. FILES_ARGS="--labs 05-event-loop --seconds 5"
.PHONY: files
files: build ## static files: sendfile, read/write, cold cache (10 min)
	$(call run_experiment,files,$(FILES_ARGS),FILES_ARGS)

# Exercises (exercises/): write a model yourself, and a staged checker says what is wrong with it.
# Your work is exercises/FOLDER/work/ (made from skeleton/ on first use: git status shows it);
# `make exercise-reset EX=NN` puts the skeleton back. The checker (exercises/checker/) starts your
# server with PORT in its environment, runs the stages in order and stops at the first failure:
#   make exercise EX=01                the TypeScript skeleton, exercises/01-serial/work/server.ts
#   make exercise EX=01 CMD=c          the C skeleton, work/server.c, compiled with cc
#   make exercise EX=01 CMD=./server   any command that listens on $PORT (run from the repository root)
#   make exercise EX=01 CMD=lab        the lab's own model, which passes every stage
#   STAGE=3                            stages 1 to 3 only
.PHONY: exercise exercise-reset
exercise_run = $(NODE) dist/exercises/checker/main.js '$(1)' $(if $(STAGE),--stage $(STAGE))

exercise: build
	@$(call exercise_run,$(EX))

# make exercise-01, exercise-02, exercise-05, exercise-chat: the same as EX=NN (make help lists
# them once, as exercise-NN; an exercise the checker does not know gets one line naming them, exit 2).
exercise-%: build FORCE ## check exercise NN (01 02 05 chat; or EX=NN), CMD=c: in C
	@$(call exercise_run,$*)

exercise-reset: build ## exercise EX's skeleton back in its work/ folder
	@$(NODE) dist/exercises/checker/main.js '$(EX)' --reset
