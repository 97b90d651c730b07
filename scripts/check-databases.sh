#!/usr/bin/env bash
# Fail loudly unless the MariaDB and PostgreSQL servers the tests use answer on loopback.
# On a machine where they are installed but stopped, try to start them first.
set -uo pipefail

mariadb_up() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1 || mysql -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1; }
postgres_up() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; }

if ! mariadb_up && command -v mariadbd >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do mariadb_up && break; sleep 1; done
fi
if ! postgres_up && command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
fi

ok=1
mariadb_up || { echo "MariaDB is not reachable at 127.0.0.1:3306 as root without password" >&2; ok=0; }
postgres_up || { echo "PostgreSQL is not reachable at 127.0.0.1:5432 as postgres (trust auth)" >&2; ok=0; }
[ "$ok" = 1 ] || { echo "the binding tests need both servers; start them and run again" >&2; exit 1; }
echo "MariaDB and PostgreSQL answer"
