# Sourced by .ci/run and the benchmarks: start_postgres starts a private PostgreSQL cluster
# (Debian's package) on a free loopback port in a temporary folder, sets PG_URL to a
# superuser URL for it, and sets PG_STOP to the command that stops it and removes the folder.
start_postgres() {
    local bin dir port
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local as_pg=()
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses to run as root; the package made a postgres user.
        chown postgres "$dir"
        as_pg=(runuser -u postgres --)
    fi
    # From /: the postgres user may not be able to enter the caller's folder.
    (
        cd /
        "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log"
        "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 ${PG_EXTRA_OPTIONS:-}" \
            start >/dev/null
    )
    PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    PG_STOP="cd /; ${as_pg[*]} $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null; rm -rf $dir"
}
