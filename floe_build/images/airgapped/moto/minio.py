#!/usr/local/bin/python3
"""`minio server DIR... [--address [HOST]:PORT] ...` of moto-airgapped: moto's S3 server where MinIO would run.

Written here because no kept library answers MinIO's command line and health paths in front of moto: the
MinIO chart starts `minio server /export -S /etc/minio/certs/ --address :9000 --console-address :9001` and
probes /minio/health/live and /minio/health/ready. Everything else goes to moto's own WSGI application (the
one `moto_server` runs). Data lives in memory: the directories are accepted and left empty. moto accepts
any credentials, so MINIO_ROOT_USER and MINIO_ROOT_PASSWORD are read only to say so.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

HEALTH_PATHS = ("/minio/health/live", "/minio/health/ready", "/minio/health/cluster")


def health(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in HEALTH_PATHS and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    return wrapped


def parse(argv: list[str]) -> tuple[str, int]:
    parser = argparse.ArgumentParser(prog="minio", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server", help="serve S3 (moto) on --address")
    server.add_argument("dirs", nargs="*", help="accepted, unused: data is kept in memory")
    server.add_argument("--address", default=":9000")
    server.add_argument("--console-address", default="", help="accepted, unused: there is no console")
    server.add_argument("-S", "--certs-dir", default="", help="accepted, unused: plain HTTP only")
    server.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.address.rpartition(":")
    if not port.isdigit():
        parser.error(f"--address {args.address!r}: expected [HOST]:PORT")
    return host or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    host, port = parse(sys.argv[1:] if argv is None else argv)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    if os.environ.get("MINIO_ROOT_USER"):
        print("minio (moto stand-in): credentials are not checked; any access key is accepted", flush=True)
    print(f"minio (moto {os.environ.get('MOTO_VERSION', '?')} stand-in): S3 API on {host}:{port}", flush=True)
    run_simple(
        host,
        port,
        health(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
