# Everyday commands; the README shows the same ones.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install native run test lint clean fuzz

# The native decide (a Redis module) is built too when a C compiler is
# there; without one, decisions run on the Lua scripts (said once).
install: $(VENV)/.installed
	@NATIVE_OPTIONAL=1 VENV=$(VENV) scripts/build-native

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-spark.txt scripts/install-system-deps
	scripts/install-system-deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# the Spark engine of the batch scoring (score --engine spark) and its tests
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-spark.txt
	touch $@

# The Redis module riskservice/limits/native/riskdecide.so (RISK.DECIDE),
# from its C file and Redis 6.2's redismodule.h (docs/architecture.md).
native:
	VENV=$(VENV) scripts/build-native

# Install everything and start the service (embedded Redis unless REDIS_URL is set).
run: install
	scripts/serve

# The whole test suite against real Redis servers the fixtures start, and
# Debian's Chromium for the console's browser test (installed if missing).
test: install
	scripts/install-browser
	$(PY) -m pytest

# Stateful fuzzing (schemathesis) of the served API against its own OpenAPI
# document; docs/fuzzing.md. FUZZ_EXAMPLES test cases per operation and phase.
FUZZ_EXAMPLES ?= 100
fuzz: install
	$(PY) -m tests.serving.fuzz --max-examples $(FUZZ_EXAMPLES)

lint: install
	$(VENV)/bin/ruff check riskservice graphs config tests bench client
	$(VENV)/bin/mypy riskservice config graphs client/src

clean:
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache
	rm -f riskservice/limits/native/riskdecide.so
