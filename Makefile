# frameflow — common tasks. `make demo` and `make test` work on a fresh Debian 12 as root:
# both install what they need first (scripts/install-deps.sh; skip with FRAMEFLOW_SKIP_DEPS=1).
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all deps build build-debug check test lint fmt doc demo cluster-demo clean-demo help fuzz

all: build

help:
	@echo "make demo   - install deps, build, run the 2018 scenario (live MPEG-PS over HTTP -> emboss)"
	@echo "make check  - unit tests only (no ffmpeg CLI, Pillow, Chromium or servers; under 2 minutes)"
	@echo "make test   - install deps, build, run every test (unit + integration on 127.0.0.1)"
	@echo "make lint   - cargo fmt --check + cargo clippy --all-targets -D warnings + cargo doc -D warnings"
	@echo "make build  - release build (target/release/frameflow)"
	@echo "make cluster-demo - the demo through a local NATS JetStream pool of two workers"
	@echo "make fuzz   - build the fuzz targets (fuzz/) and run each for FUZZ_SECONDS (default 30)"

deps:
ifneq ($(FRAMEFLOW_SKIP_DEPS),1)
	@bash scripts/install-deps.sh
endif

build: deps
	$(CARGO) build --release

# Unit tests beside the code: no ffmpeg CLI, Pillow, Chromium or servers at run time
# (building still needs the FFmpeg -dev libraries). CONTRIBUTING.md lists the tiers.
check:
	$(CARGO) test --workspace --lib --bins

test: deps
	$(CARGO) test --workspace --no-fail-fast

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	@# The library is usable without the command line: it must not depend on clap.
	@if $(CARGO) tree -p frameflow -e normal --prefix none | grep -q '^clap '; then \
		echo "lint: the frameflow library depends on clap"; exit 1; fi

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

fmt:
	$(CARGO) fmt --all

FUZZ_SECONDS ?= 30

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

demo: build
	bash scripts/demo.sh

# The same live stream through a local nats-server and two `frameflow worker`s.
cluster-demo: build
	CLUSTER=1 OUT=demo-cluster bash scripts/demo.sh

clean-demo:
	rm -rf demo-out demo-cluster
