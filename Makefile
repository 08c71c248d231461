# Two commands set up a fresh Debian machine: `make run` and `make test` (see README.md).
SWIFT ?= swift
# Debian packages the build needs: the compression libraries' headers and pkg-config to find them.
APT_PACKAGES := liblz4-dev libzstd-dev pkg-config
DEMO_DIR ?= ./demo-data

.PHONY: deps build release test run demo bench clean

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Builds everything (the tests start the real sluice-log executable) and runs every test.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Starts the broker with embedded defaults: data in ./data, listening on 127.0.0.1:9400 (Ctrl-C stops it
# cleanly). Use `.build/release/sluice` against it.
run: release
	exec .build/release/sluiced

demo: release
	$(SWIFT) run -c release --skip-build sluice-log demo $(DEMO_DIR)

bench: release
	$(SWIFT) run -c release --skip-build sluice-log bench

clean:
	rm -rf .build $(DEMO_DIR)
