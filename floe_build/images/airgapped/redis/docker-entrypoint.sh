#!/bin/sh
# floe-testinfra: entry point of redis-airgapped, written to the documented contract of the upstream redis
# image (not a copy of it):
#   * flags only (`--save ""`), or a .conf file first: redis-server with those arguments;
#   * redis-server as root: /data owned by redis, then run as redis (uid 999) with umask 0077;
#   * redis-server: `--protected-mode no` unless the arguments set protected-mode themselves or only ask for
#     the version or help (upstream builds Redis with that default; Debian's binary keeps protected mode on,
#     which refuses remote clients);
#   * anything else is exec'd as given.
set -eu

case "${1:-}" in
	-*|*.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = 'redis-server' ]; then
	if [ "$(id -u)" = '0' ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
	fi
	case " $* " in
		*' --protected-mode '*|*' --version '*|*' -v '*|*' --help '*|*' -h '*|*' --test-memory '*) ;;
		*)
			shift
			if [ "$#" -gt 0 ] && [ "${1%.conf}" != "$1" ]; then
				conf="$1"; shift
				set -- redis-server "$conf" --protected-mode no "$@"
			else
				set -- redis-server --protected-mode no "$@"
			fi
			;;
	esac
	um="$(umask)"
	if [ "$um" = '0022' ]; then
		umask 0077
	fi
fi

exec "$@"
