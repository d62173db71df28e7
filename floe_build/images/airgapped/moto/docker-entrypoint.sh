#!/bin/sh
# floe-testinfra: entry point of moto-airgapped, to the MinIO image's contract as the MinIO chart uses it:
# arguments that do not start with `minio` are given to it (`server /export ...`), then exec.
set -eu
if [ -n "${1:-}" ] && [ "$1" != 'minio' ]; then
	set -- minio "$@"
fi
exec "$@"
