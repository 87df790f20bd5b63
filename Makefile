# shmmon: build, test, lint, bench, demo and the C++ compatibility peers.
#
#   make deps     install what is missing (apt, as root): g++, gcc, libboost-dev, libsystemd-dev,
#                 prometheus (for promtool), python3 and python3-venv, strace, mount (the log
#                 tests mount a small tmpfs), tmux (the test of shmmon top), chromium (the test
#                 of serve's status page); and staticcheck
#   make compat   build the C/C++ peers (Boost.Interprocess, proctab, tcpwd, sd_notify, the C
#                 client's worker and bench) in compat/bin/
#   make build    build bin/shmmon
#   make test     run all Go tests (with -race) against the C++ peers
#   make lint     go vet, staticcheck, gofmt
#   make faults   the fault-injection suite (real processes, ~15 min) -> RELIABILITY.md
#   make fuzz     every fuzz target, FUZZTIME (10s) each, from the checked-in seed corpora
#   make bench    Go benchmarks and the Boost reference figures -> bench.out, BENCHMARKS.md
#   make demo     run ./demo.sh
#   make clean    remove build outputs

SHELL := /bin/bash

GO       ?= go
GOFMT    ?= gofmt
CXX      ?= g++
CXXFLAGS ?= -O2 -std=c++17 -Wall -Wextra
CFLAGS   ?= -O2 -std=c11 -Wall -Wextra
LDLIBS   ?= -lrt -pthread
PYTHON   ?= python3

BOOST_HEADER   := /usr/include/boost/interprocess/shared_memory_object.hpp
SYSTEMD_HEADER := /usr/include/systemd/sd-daemon.h
COMPAT_BINS    := compat/bin/boost_worker compat/bin/boost_checker compat/bin/boost_bench compat/bin/proctab_client \
	compat/bin/tcpwd_client compat/bin/sdnotify_client compat/bin/c_worker compat/bin/c_bench

# Where `go install` puts staticcheck: $GOBIN if set, else the first GOPATH entry's bin/.
GO_BIN_DIR   = $(shell d="$$($(GO) env GOBIN)"; [ -n "$$d" ] || d="$$($(GO) env GOPATH | cut -d: -f1)/bin"; echo "$$d")
STATICCHECK  = $(GO_BIN_DIR)/staticcheck

FUZZTIME ?= 10s

.PHONY: all deps compat build test lint faults fuzz bench demo clean

all: build

deps:
	@missing=""; \
	[ -f "$(BOOST_HEADER)" ] || missing="$$missing libboost-dev"; \
	[ -f "$(SYSTEMD_HEADER)" ] || missing="$$missing libsystemd-dev"; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v strace >/dev/null 2>&1 || missing="$$missing strace"; \
	py=""; for p in $(PYTHON) /usr/bin/python3; do \
		$$p -c 'import mmap, threading, venv, ensurepip; ensurepip.version()' >/dev/null 2>&1 && { py=$$p; break; }; \
	done; \
	[ -n "$$py" ] || missing="$$missing python3 python3-venv"; \
	command -v mount >/dev/null 2>&1 || missing="$$missing mount"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing$$missing: run 'sudo apt-get install$$missing' (or 'sudo make deps')" >&2; \
			exit 1; \
		fi; \
		echo "installing$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing || exit 1; \
	fi
	@if [ ! -x "$(STATICCHECK)" ]; then \
		echo "$(GO) install honnef.co/go/tools/cmd/staticcheck@latest"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@latest || \
			echo "warning: could not install staticcheck; 'make lint' needs it" >&2; \
	fi

compat: $(COMPAT_BINS)

# deps and the directory are order-only: they must exist, but they never
# make an up-to-date binary rebuild.
# Every C++ peer may include the shared header (how they end on SIGTERM and SIGINT).
compat/bin/%: compat/cpp/%.cpp compat/cpp/stop_signals.hpp | deps compat/bin
	$(CXX) $(CXXFLAGS) -o $@ $< $(LDLIBS)

compat/bin/%: compat/cpp/%.c | deps compat/bin
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# The C client's programs use clients/c/shmmon.h (and threads of their own).
compat/bin/c_worker compat/bin/c_bench: compat/bin/%: compat/cpp/%.c clients/c/shmmon.h | deps compat/bin
	$(CC) $(CFLAGS) -Iclients/c -o $@ $< -pthread

# The notify client is C, against Debian's libsystemd-dev.
compat/bin/sdnotify_client: compat/cpp/sdnotify_client.c | deps compat/bin
	$(CC) $(CFLAGS) -o $@ $< -lsystemd

compat/bin:
	mkdir -p $@

build: compat
	$(GO) build -o bin/shmmon ./cmd/shmmon

test: compat
	$(GO) test -race -count=1 ./...

lint:
	$(GO) vet ./...
	$(GO) vet -tags faults ./faults
	@[ -x "$(STATICCHECK)" ] || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	"$(STATICCHECK)" ./...
	"$(STATICCHECK)" -tags faults ./faults
	@files="$$($(GOFMT) -l .)"; \
	if ! test -z "$$files"; then echo "gofmt -l: these files need formatting:"; echo "$$files"; exit 1; fi

# The fault-injection suite: its outcome table is printed and written to RELIABILITY.md.
faults:
	FAULTS_REPORT="$(CURDIR)/RELIABILITY.md" $(GO) test -tags faults -count=1 -v -parallel 3 -timeout 25m ./faults

fuzz:
	GO="$(GO)" scripts/fuzz.sh $(FUZZTIME)

# The Go part may fail (for example while a package is still missing); the
# Boost figures are still produced, and the Go failure is reported at the end.
# The 100,000-object scan maps 100,000 objects: above the default vm.max_map_count (65530).
bench: compat
	@if [ "$$(cat /proc/sys/vm/max_map_count)" -lt 262144 ] && [ "$$(id -u)" = 0 ]; then \
		echo "echo 262144 > /proc/sys/vm/max_map_count   # for the 100,000-object scan"; \
		echo 262144 > /proc/sys/vm/max_map_count; \
	fi
	set -o pipefail; rc=0; \
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./shmobj ./monitor ./worker ./supervise ./worklog ./internal/benchref | tee bench.out || rc=$$?; \
	$(GO) test -tags faults -run '^$$' -bench 'ServeLoad|DetectLatency|Reload' -benchtime 1x -count=1 -timeout 60m ./faults | tee -a bench.out || rc=$$?; \
	compat/bin/boost_bench | tee -a bench.out || exit $$?; \
	compat/bin/c_bench | tee -a bench.out || exit $$?; \
	PYTHONPATH=clients/python PYTHONDONTWRITEBYTECODE=1 $(PYTHON) compat/python/py_bench.py | tee -a bench.out || exit $$?; \
	[ $$rc = 0 ] && scripts/benchreport.sh bench.out > BENCHMARKS.md && echo "wrote BENCHMARKS.md"; \
	exit $$rc

demo: build
	./demo.sh

clean:
	rm -rf bin/ compat/bin/
