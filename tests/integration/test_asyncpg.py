"""asyncpg against a real PostgreSQL (UVCFFI_TEST_POSTGRES_DSN), on both loops: connect, pool,
prepared statements and cursors, transactions, COPY in and out, LISTEN/NOTIFY, cancellation by
timeout, a backend terminated mid-query.
"""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

asyncpg = pytest.importorskip("asyncpg")

from ._helpers import env_or_skip, run  # noqa: E402


@pytest.fixture
def dsn():
    return env_or_skip("UVCFFI_TEST_POSTGRES_DSN", "needs a PostgreSQL server")


def test_connect_and_types(loop, dsn):
    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            return (await conn.fetchval("select $1::int + 1", 41),
                    await conn.fetchrow("select 'é'::text as t, 1.5::float8 as f, null::int as n"),
                    len(await conn.fetchval("select repeat('x', 3000000)")),
                    conn.get_server_version().major >= 9)
        finally:
            await conn.close()

    n, row, big, version = run(loop, main())
    assert (n, dict(row), big, version) == (42, {"t": "é", "f": 1.5, "n": None}, 3000000, True)


def test_pool_under_concurrency(loop, dsn):
    async def main():
        async with asyncpg.create_pool(dsn, min_size=2, max_size=5) as pool:
            async def one(i):
                async with pool.acquire() as conn:
                    return await conn.fetchval("select $1::int * 2", i)
            got = await asyncio.gather(*(one(i) for i in range(200)))
            return got, pool.get_size() <= 5

    got, bounded = run(loop, main())
    assert got == [i * 2 for i in range(200)]
    assert bounded


def test_prepared_statements_and_cursor(loop, dsn):
    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            stmt = await conn.prepare("select g, g * g as sq from generate_series(1, $1::int) g")
            rows = await stmt.fetch(5)
            again = await stmt.fetchval(3)
            async with conn.transaction():
                seen = [r["sq"] async for r in stmt.cursor(1000, prefetch=64)]
            return [tuple(r) for r in rows], again, len(seen), sum(seen)
        finally:
            await conn.close()

    rows, again, count, total = run(loop, main())
    assert rows == [(1, 1), (2, 4), (3, 9), (4, 16), (5, 25)]
    assert (again, count, total) == (1, 1000, sum(g * g for g in range(1, 1001)))


def test_transactions_commit_rollback_savepoint(loop, dsn):
    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("create temp table t (v int)")
            async with conn.transaction():
                await conn.execute("insert into t values (1)")
            try:
                async with conn.transaction():
                    await conn.execute("insert into t values (2)")
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
            async with conn.transaction():
                await conn.execute("insert into t values (3)")
                try:
                    async with conn.transaction():  # a savepoint
                        await conn.execute("insert into t values (4)")
                        await conn.execute("select 1 / 0")
                except asyncpg.DivisionByZeroError:
                    pass
            return [r["v"] for r in await conn.fetch("select v from t order by v")]
        finally:
            await conn.close()

    assert run(loop, main()) == [1, 3]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncpg's copy_from_table to a file fails on "
                    "Python 3.9 and 3.10 with asyncio's own loop too (AttributeError in its protocol.pyx)")
def test_copy_in_and_out(loop, dsn):
    records = [(i, f"name-{i}", i / 3) for i in range(20000)]

    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("create temp table c (id int, name text, x float8)")
            await conn.copy_records_to_table("c", records=records)
            out = io.BytesIO()
            await conn.copy_from_table("c", output=out, format="csv")
            await conn.execute("create temp table d (id int, name text, x float8)")
            out.seek(0)
            await conn.copy_to_table("d", source=out, format="csv")
            same = await conn.fetchval("select count(*) from c join d using (id, name, x)")
            return out.getvalue().count(b"\n"), same, await conn.fetchval("select sum(id) from d")
        finally:
            await conn.close()

    assert run(loop, main()) == (20000, 20000, sum(range(20000)))


def test_listen_notify(loop, dsn):
    async def main():
        listener = await asyncpg.connect(dsn)
        sender = await asyncpg.connect(dsn)
        got: asyncio.Queue = asyncio.Queue()
        try:
            await listener.add_listener("uvcffi_chan", lambda c, pid, ch, data: got.put_nowait((ch, data)))
            for i in range(5):
                await sender.execute("select pg_notify('uvcffi_chan', $1)", f"msg-{i}")
            return [await asyncio.wait_for(got.get(), 10) for _ in range(5)]
        finally:
            await sender.close()
            await listener.close()

    assert run(loop, main()) == [("uvcffi_chan", f"msg-{i}") for i in range(5)]


def test_query_cancelled_by_timeout(loop, dsn):
    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            out = []
            try:
                await conn.fetchval("select pg_sleep(30)", timeout=0.2)
            except asyncio.TimeoutError:
                out.append("timeout")
            try:
                await asyncio.wait_for(conn.fetchval("select pg_sleep(30)"), 0.2)
            except asyncio.TimeoutError:
                out.append("wait_for")
            out.append(await conn.fetchval("select 7"))  # the connection is still usable
            return out
        finally:
            await conn.close()

    assert run(loop, main()) == ["timeout", "wait_for", 7]


def test_backend_terminated_mid_query(loop, dsn):
    async def main():
        victim = await asyncpg.connect(dsn)
        admin = await asyncpg.connect(dsn)
        try:
            pid = victim.get_server_pid()
            query = asyncio.ensure_future(victim.fetchval("select pg_sleep(30)"))
            for _ in range(1000):  # bounded: until the backend is running the query
                state = await admin.fetchval("select state from pg_stat_activity where pid = $1", pid)
                if state == "active":
                    break
                await asyncio.sleep(0.01)
            await admin.fetchval("select pg_terminate_backend($1)", pid)
            try:
                await query
            except (asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError) as exc:
                return state, type(exc).__name__, victim.is_closed()
        finally:
            await victim.close()
            await admin.close()

    state, error, closed = run(loop, main())
    assert state == "active"
    assert error in ("AdminShutdownError", "ConnectionDoesNotExistError")
    assert closed


def test_server_restart_mid_query(loop, dsn):
    """The server restarts under a running query: the query fails, the pool serves again after."""
    restart = env_or_skip("UVCFFI_TEST_POSTGRES_RESTART", "needs a restartable PostgreSQL server")

    async def main():
        async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
            conn = await asyncpg.connect(dsn)
            try:
                query = asyncio.ensure_future(conn.fetchval("select pg_sleep(30)"))
                while await pool.fetchval("select count(*) from pg_stat_activity where query = "
                                          "'select pg_sleep(30)' and state = 'active'") == 0:
                    await asyncio.sleep(0.01)  # bounded by run()'s timeout
                proc = await asyncio.create_subprocess_shell(restart)
                status = await proc.wait()
                try:
                    await query
                    outcome = "returned"
                except (asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError,
                        ConnectionError):
                    outcome = "lost"
                after = None
                for _ in range(3):  # the pool's idle connection died too: it reconnects on use
                    try:
                        after = await pool.fetchval("select 41 + 1")
                        break
                    except (asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError,
                            asyncpg.InterfaceError, ConnectionError):
                        continue
                return status, outcome, conn.is_closed(), after
            finally:
                await conn.close()

    assert run(loop, main(), timeout=90) == (0, "lost", True, 42)


def test_tls_connection_through_start_tls(loop, dsn):
    """asyncpg asks the server for TLS, then upgrades its connection with ``loop.start_tls``."""
    import ssl

    ca = env_or_skip("UVCFFI_TEST_POSTGRES_CA", "needs a PostgreSQL server with TLS")
    ctx = ssl.create_default_context(cafile=ca)
    records = [(i, "é" * (i % 50)) for i in range(5000)]

    async def main():
        conn = await asyncpg.connect(dsn.replace("127.0.0.1", "localhost"), ssl=ctx)
        try:
            tls = await conn.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            big = await conn.fetchval("select repeat('z', 4000000)")
            await conn.execute("create temp table tl (id int, s text)")
            await conn.copy_records_to_table("tl", records=records)
            rows = await conn.fetch("select id, s from tl order by id")
            return tls, len(big), [tuple(r) for r in rows] == records
        finally:
            await conn.close()

    assert run(loop, main()) == (True, 4000000, True)
