"""redis-py's asyncio client (``redis.asyncio``) against a real Redis (UVCFFI_TEST_REDIS_URL), on
both loops: commands, pipelines, pub/sub, blocking pops with timeouts, a pool under 200 concurrent
tasks, a connection killed by the server during a blocking call.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

aioredis = pytest.importorskip("redis.asyncio")
import redis.exceptions  # noqa: E402

from ._helpers import env_or_skip, payload, run  # noqa: E402


@pytest.fixture
def url():
    return env_or_skip("UVCFFI_TEST_REDIS_URL", "needs a Redis server")


@pytest.fixture
def prefix():
    return f"uvcffi-test:{uuid.uuid4().hex}:"


async def cleanup(r, prefix):
    keys = [k async for k in r.scan_iter(match=prefix + "*")]
    if keys:
        await r.delete(*keys)


def test_commands(loop, url, prefix):
    big = payload(1024 * 1024 + 9)

    async def main():
        r = aioredis.Redis.from_url(url)
        try:
            await r.set(prefix + "s", "v")
            await r.set(prefix + "big", big)
            await r.hset(prefix + "h", mapping={"a": 1, "b": "two"})
            await r.expire(prefix + "s", 100)
            return (await r.get(prefix + "s"), await r.incrby(prefix + "n", 5),
                    await r.get(prefix + "big") == big, await r.hgetall(prefix + "h"),
                    0 < await r.ttl(prefix + "s") <= 100,
                    await r.get(prefix + "missing"))
        finally:
            await cleanup(r, prefix)
            await r.aclose()

    assert run(loop, main()) == (b"v", 5, True, {b"a": b"1", b"b": b"two"}, True, None)


def test_pipelines(loop, url, prefix):
    async def main():
        r = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            async with r.pipeline(transaction=True) as pipe:
                for _ in range(1000):
                    pipe.incr(prefix + "n")
                pipe.get(prefix + "n")
                results = await pipe.execute()
            async with r.pipeline(transaction=False) as pipe:
                pipe.set(prefix + "a", "1").lpush(prefix + "l", *range(10)).lrange(prefix + "l", 0, 2)
                plain = await pipe.execute()
            return results[-1], results[:3], plain
        finally:
            await cleanup(r, prefix)
            await r.aclose()

    assert run(loop, main()) == ("1000", [1, 2, 3], [True, 10, ["9", "8", "7"]])


def test_pubsub(loop, url, prefix):
    async def main():
        r = aioredis.Redis.from_url(url, decode_responses=True)
        pubsub = r.pubsub()
        try:
            await pubsub.subscribe(prefix + "chan")
            await pubsub.psubscribe(prefix + "pat.*")
            got = []
            while len(got) < 2:  # the two subscribe confirmations
                msg = await pubsub.get_message(timeout=5)
                assert msg is not None, "no subscribe confirmation"
                got.append(msg["type"])
            for i in range(3):
                await r.publish(prefix + "chan", f"m{i}")
            await r.publish(prefix + "pat.x", "p")
            data = []
            while len(data) < 4:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                assert msg is not None, f"only {data!r} arrived"
                data.append((msg["type"], msg["data"]))
            idle = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            return sorted(got), data, idle
        finally:
            await pubsub.aclose()
            await r.aclose()

    got, data, idle = run(loop, main())
    assert got == ["psubscribe", "subscribe"]
    assert data == [("message", "m0"), ("message", "m1"), ("message", "m2"), ("pmessage", "p")]
    assert idle is None


def test_blocking_pops_with_timeout(loop, url, prefix):
    async def main():
        r = aioredis.Redis.from_url(url, decode_responses=True)
        pusher = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            t0 = asyncio.get_running_loop().time()
            empty = await r.blpop([prefix + "q"], timeout=0.3)
            waited = asyncio.get_running_loop().time() - t0
            pop = asyncio.ensure_future(r.brpop([prefix + "q"], timeout=10))
            while not any(c.get("cmd") == "brpop" for c in await pusher.client_list()):  # bounded by run()
                await asyncio.sleep(0.01)
            await pusher.rpush(prefix + "q", "job")
            return empty, waited >= 0.25, await pop
        finally:
            await cleanup(r, prefix)
            await pusher.aclose()
            await r.aclose()

    assert run(loop, main()) == (None, True, (prefix + "q", "job"))


def test_pool_under_200_concurrent_tasks(loop, url, prefix):
    async def main():
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=20, timeout=20)
        r = aioredis.Redis(connection_pool=pool)
        try:
            async def one(i):
                await r.set(f"{prefix}{i}", i)
                await r.incr(prefix + "count")
                return int(await r.get(f"{prefix}{i}"))
            got = await asyncio.gather(*(one(i) for i in range(200)))
            return got, int(await r.get(prefix + "count")), len(pool._in_use_connections) + len(
                pool._available_connections) <= 20
        finally:
            await cleanup(r, prefix)
            await r.aclose()
            await pool.disconnect()

    assert run(loop, main()) == (list(range(200)), 200, True)


def test_connection_killed_during_blocking_call(loop, url, prefix):
    async def main():
        victim = aioredis.Redis.from_url(url, retry=None, retry_on_error=[])
        admin = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            await victim.client_setname("uvcffi-victim")
            victim_id = await victim.client_id()
            pop = asyncio.ensure_future(victim.blpop([prefix + "never"], timeout=30))
            while not any(c.get("name") == "uvcffi-victim" and c.get("cmd") == "blpop"
                          for c in await admin.client_list()):
                await asyncio.sleep(0.01)
            killed = await admin.execute_command("CLIENT", "KILL", "ID", victim_id)
            try:
                await pop
                outcome = "returned"
            except redis.exceptions.ConnectionError:
                outcome = "ConnectionError"
            return killed >= 1, outcome, await victim.ping()  # reconnects on the next command
        finally:
            await victim.aclose()
            await admin.aclose()

    assert run(loop, main()) == (True, "ConnectionError", True)


def test_server_restart_during_blocking_call(loop, url, prefix):
    restart = env_or_skip("UVCFFI_TEST_REDIS_RESTART", "needs a restartable Redis server")

    async def main():
        victim = aioredis.Redis.from_url(url, retry=None, retry_on_error=[])
        admin = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            pop = asyncio.ensure_future(victim.blpop([prefix + "never"], timeout=30))
            while not any(c.get("cmd") == "blpop" for c in await admin.client_list()):
                await asyncio.sleep(0.01)  # bounded by run()'s timeout
            proc = await asyncio.create_subprocess_shell(restart)
            status = await proc.wait()
            try:
                await pop
                outcome = "returned"
            except redis.exceptions.ConnectionError:
                outcome = "ConnectionError"
            return status, outcome, await victim.ping(), await admin.ping()  # both reconnect
        finally:
            await victim.aclose()
            await admin.aclose()

    assert run(loop, main(), timeout=60) == (0, "ConnectionError", True, True)
