#!/usr/bin/env bash
# Throwaway PostgreSQL on 127.0.0.1, trust auth, data+socket in a temp dir owned by postgres.
#   pg-temp.sh start [DIR]   -> prints the port on stdout (state dir in DIR, default /tmp/pg-temp-orleans)
#   pg-temp.sh stop  [DIR]   -> stops the server and deletes DIR
#   pg-temp.sh restart-now [DIR] -> restarts the server at once (immediate shutdown: clients see their connections cut)
# Connection string: Host=127.0.0.1;Port=<port>;Username=postgres;Database=postgres
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)   # the newest server installed
DIR="${2:-/tmp/pg-temp-orleans}"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() {
  python3 - <<'EOF' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

case "${1:-}" in
  start)
    if [ -f "$DIR/port" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      cat "$DIR/port"; exit 0
    fi
    rm -rf "$DIR"; mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
    # initdb must not run as root; runuser needs a cwd postgres can read
    cd "$DIR"
    as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    PORT=$(free_port)
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/pg.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null || { cat "$DIR/pg.log" >&2; exit 1; }
    echo "$PORT" | as_pg tee "$DIR/port" >/dev/null
    echo "$PORT"
    ;;
  restart-now)
    (cd "$DIR" && as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 60 restart >/dev/null)
    ;;
  stop)
    if [ -d "$DIR/data" ]; then
      (cd "$DIR" && as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1) || true
    fi
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start|stop|restart-now [DIR]" >&2; exit 2 ;;
esac
