# make test-integration - tests/integration: real frameworks and real servers, each test on asyncio's
# loop and on uvcffi's: uvicorn + Starlette/FastAPI (h11, httptools), aiohttp, websockets, anyio (and
# its pytest plugin), pytest-asyncio, asyncpg on PostgreSQL, redis.asyncio on Redis.
# Installs the pinned packages of tests/integration/requirements.txt into .venv (once; again when the
# file changes), then runs pytest under tests/integration/servers.sh, which apt-get installs
# postgresql / redis-server where missing (as root), starts both on free loopback ports, exports
# UVCFFI_TEST_POSTGRES_DSN / UVCFFI_TEST_REDIS_URL and stops them at the end. Set those variables to
# use servers of your own. INTEGRATION_ARGS passes pytest options (-x, -k aiohttp, ...).
# Plain `make test` collects tests/integration too: there every module skips unless its library is
# installed, and the PostgreSQL/Redis tests skip unless the variables are set.
INTEGRATION_REQ := tests/integration/requirements.txt
STAMP_INTEGRATION := $(VENV)/.integration-stamp

.PHONY: test-integration

$(STAMP_INTEGRATION): $(STAMP_DEPS) $(INTEGRATION_REQ)
	$(PY) -m pip install -q --disable-pip-version-check -r $(INTEGRATION_REQ)
	touch $@

test-integration: build $(STAMP_INTEGRATION)
	bash tests/integration/servers.sh $(PY) -m pytest -q -p no:cacheprovider \
		-o asyncio_default_fixture_loop_scope=function tests/integration $(INTEGRATION_ARGS)
