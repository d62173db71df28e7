#!/usr/bin/env bash
# floe-testinfra: entry point of postgres-airgapped, written here to the documented contract of the
# upstream postgres image (not a copy of it):
#   * `postgres` (or flags only) as the command: as root, fix ownership and drop to the postgres user;
#   * an empty PGDATA: initdb with POSTGRES_USER (default postgres) and POSTGRES_PASSWORD (required
#     unless POSTGRES_HOST_AUTH_METHOD=trust), host connections authenticated with scram-sha-256,
#     POSTGRES_DB created, then /docker-entrypoint-initdb.d: *.sh run (executable) or sourced, *.sql
#     fed to psql, against a server listening on the Unix socket only; then that server stops;
#   * anything else is exec'd as given.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = 'postgres' ]; then
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA" 2>/dev/null || :
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		: "${POSTGRES_USER:=postgres}"
		: "${POSTGRES_DB:=$POSTGRES_USER}"
		auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
		if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != 'trust' ]; then
			log "Database is uninitialized and superuser password is not specified."
			log "Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust, never for anything real)."
			exit 1
		fi
		log "initdb in $PGDATA (user $POSTGRES_USER)"
		# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list, as upstream
		initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
			${POSTGRES_INITDB_ARGS:-} >&2
		printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
		export PGUSER="$POSTGRES_USER" PGPASSWORD="${POSTGRES_PASSWORD:-}"
		pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start >&2
		if [ "$POSTGRES_DB" != 'postgres' ]; then
			psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres --no-psqlrc \
				--set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >&2
		fi
		for f in /docker-entrypoint-initdb.d/*; do
			[ -e "$f" ] || continue
			case "$f" in
				*.sh)
					if [ -x "$f" ]; then
						log "running $f"
						"$f"
					else
						log "sourcing $f"
						# shellcheck disable=SC1090
						. "$f"
					fi
					;;
				*.sql) log "running $f"; psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --no-psqlrc -f "$f" >&2 ;;
				*) log "ignoring $f" ;;
			esac
		done
		pg_ctl -D "$PGDATA" -m fast -w stop >&2
		unset PGPASSWORD PGUSER
		log "init process complete; ready for start up"
	fi
fi

exec "$@"
