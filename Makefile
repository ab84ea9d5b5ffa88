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
	$(VITEST) run

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
