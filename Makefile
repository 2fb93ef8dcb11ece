# frameflow — common tasks. `make demo` and `make test` work on a fresh Debian 12 as root:
# both install what they need first (scripts/install-deps.sh; skip with FRAMEFLOW_SKIP_DEPS=1).
SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all deps build build-debug test lint fmt demo clean-demo help fuzz

all: build

help:
	@echo "make demo   - install deps, build, run the 2018 scenario (live MPEG-PS over HTTP -> emboss)"
	@echo "make test   - install deps, build, run every test (unit + integration on 127.0.0.1)"
	@echo "make lint   - cargo fmt --check + cargo clippy --all-targets -D warnings"
	@echo "make build  - release build (target/release/frameflow)"
	@echo "make fuzz   - build the fuzz targets (fuzz/) and run each for FUZZ_SECONDS (default 30)"

deps:
ifneq ($(FRAMEFLOW_SKIP_DEPS),1)
	@bash scripts/install-deps.sh
endif

build: deps
	$(CARGO) build --release

test: deps
	$(CARGO) test --workspace --no-fail-fast

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

FUZZ_SECONDS ?= 30

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

demo: build
	bash scripts/demo.sh

clean-demo:
	rm -rf demo-out
