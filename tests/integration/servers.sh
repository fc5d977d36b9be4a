#!/usr/bin/env bash
# servers.sh CMD [ARGS...] - run CMD with a PostgreSQL and a Redis server of its own on loopback.
#
# Installs postgresql and redis-server with apt-get where they are missing (root only; one
# `apt-get update` first), starts PostgreSQL (initdb in a fresh temporary data directory, as the
# `postgres` user when run as root: PostgreSQL refuses to run as root) and redis-server, each on a
# free 127.0.0.1 port, exports UVCFFI_TEST_POSTGRES_DSN and UVCFFI_TEST_REDIS_URL (and
# UVCFFI_TEST_POSTGRES_CA: PostgreSQL also accepts TLS, with a certificate made here), runs CMD, and
# stops both servers on any exit (trap). Exits with CMD's status. UVCFFI_TEST_POSTGRES_RESTART and
# UVCFFI_TEST_REDIS_RESTART are shell commands that restart a server in place (same port), for the
# tests of connection loss.
# A variable already set (your own server) is kept and that server is not started.
set -euo pipefail

work=$(mktemp -d /tmp/uvcffi-servers.XXXXXX)
pg_bin=""
redis_port=""

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_pg() {  # run a PostgreSQL binary as the postgres user when we are root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_servers() {
    local rc=$?
    if [ -n "$pg_bin" ] && [ -f "$work/pg/postmaster.pid" ]; then
        as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "$redis_port" ] && [ -f "$work/redis.pid" ]; then
        redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 \
            || kill "$(cat "$work/redis.pid")" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need=()
if [ -z "${UVCFFI_TEST_POSTGRES_DSN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need+=(postgresql)
fi
if [ -z "${UVCFFI_TEST_REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
    need+=(redis-server)
fi
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "servers.sh: ${need[*]} missing and not root: install them, or set" \
             "UVCFFI_TEST_POSTGRES_DSN / UVCFFI_TEST_REDIS_URL to your own servers" >&2
        exit 1
    fi
    echo "servers.sh: apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -z "${UVCFFI_TEST_POSTGRES_DSN:-}" ]; then
    pg_bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
    [ "$(id -u)" = 0 ] && chown postgres "$work"
    port=$(free_port)
    as_pg "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$work/initdb.log" 2>&1 \
        || { cat "$work/initdb.log" >&2; exit 1; }
    # TLS too (asyncpg upgrades a connection with loop.start_tls): a throwaway certificate
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$work/pg/server.key" -out "$work/pg/server.crt" -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1
    chmod 600 "$work/pg/server.key"
    [ "$(id -u)" = 0 ] && chown postgres "$work/pg/server.key" "$work/pg/server.crt"
    as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -t 60 start \
        -o "-h 127.0.0.1 -p $port -k $work -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on" \
        >/dev/null || { cat "$work/pg.log" >&2; exit 1; }
    export UVCFFI_TEST_POSTGRES_CA="$work/pg/server.crt"
    export UVCFFI_TEST_POSTGRES_DSN="postgresql://postgres@127.0.0.1:$port/postgres"
    pg_ctl=("$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -t 60)
    [ "$(id -u)" = 0 ] && pg_ctl=(runuser -u postgres -- "${pg_ctl[@]}")
    printf '%q ' "${pg_ctl[@]}" -m fast restart >"$work/restart-postgres.sh"
    export UVCFFI_TEST_POSTGRES_RESTART="bash $work/restart-postgres.sh >/dev/null"
    echo "servers.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
fi

if [ -z "${UVCFFI_TEST_REDIS_URL:-}" ]; then
    redis_port=$(free_port)
    cat >"$work/start-redis.sh" <<EOS
redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no --daemonize yes \\
    --pidfile $work/redis.pid --logfile $work/redis.log --dir $work
for _ in \$(seq 400); do
    redis-cli -h 127.0.0.1 -p $redis_port ping >/dev/null 2>&1 && exit 0
    sleep 0.05
done
cat $work/redis.log >&2
exit 1
EOS
    bash "$work/start-redis.sh"
    printf 'redis-cli -h 127.0.0.1 -p %s shutdown nosave >/dev/null 2>&1; bash %s\n' \
        "$redis_port" "$work/start-redis.sh" >"$work/restart-redis.sh"
    export UVCFFI_TEST_REDIS_RESTART="bash $work/restart-redis.sh"
    export UVCFFI_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
    echo "servers.sh: Redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$redis_port"
fi

set +e
"$@"
status=$?
set -e
exit "$status"
