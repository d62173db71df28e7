#!/usr/local/bin/python3
"""`mc` of moto-airgapped: the commands the MinIO chart's bucket job runs, on boto3, against the S3 stand-in.

Written here because the real mc cannot be built (the Go module proxy refuses its release tags) and no kept
library speaks its command line. Supported, with mc's global flags --insecure and --config-dir:
  alias set NAME URL ACCESS SECRET     (saved in --config-dir; fails while the server does not answer)
  stat NAME/BUCKET                     (exit 1 when the bucket does not exist)
  mb [--with-lock] [-p] NAME/BUCKET
  rm -r --force NAME/BUCKET            (deletes the bucket's objects)
  version enable|suspend NAME/BUCKET
  anonymous set none|download|upload|public NAME/BUCKET
  ls [NAME[/BUCKET]]
Anything else (mc admin: users, policies) exits 1 naming what is not supported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_CONFIG_DIR = Path.home() / ".mc"


class McError(Exception):
    pass


def _split_target(target: str) -> tuple[str, str]:
    alias, _, bucket = target.partition("/")
    return alias, bucket.strip("/")


def s3_client(url: str, access: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5),
    )


class Mc:
    def __init__(self, config_dir: Path) -> None:
        self.config_file = config_dir / "config.json"

    def _aliases(self) -> dict[str, Any]:
        if self.config_file.is_file():
            return dict(json.loads(self.config_file.read_text()).get("aliases", {}))
        return {}

    def client(self, alias: str) -> Any:
        found = self._aliases().get(alias)
        if not found:
            raise McError(f"alias {alias!r} is not set (mc alias set {alias} URL ACCESS SECRET)")
        return s3_client(found["url"], found["accessKey"], found["secretKey"])

    def alias_set(self, name: str, url: str, access: str, secret: str) -> None:
        s3_client(url, access, secret).list_buckets()  # as mc: the alias is saved only when the server answers
        aliases = self._aliases()
        aliases[name] = {"url": url, "accessKey": access, "secretKey": secret, "api": "s3v4", "path": "auto"}
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps({"version": "10", "aliases": aliases}, indent=2))
        print(f"Added `{name}` successfully.")

    def run(self, args: list[str]) -> int:
        flags = {a for a in args if a.startswith("-")}
        words = [a for a in args if not a.startswith("-")]
        if not words:
            raise McError("usage: mc COMMAND ... (see the module docstring)")
        command, rest = words[0], words[1:]
        if command == "alias" and rest[:1] == ["set"] and len(rest) == 5:
            self.alias_set(*rest[1:5])
            return 0
        if command in ("stat", "mb", "rm", "ls") and len(rest) <= 1:
            alias, bucket = _split_target(rest[0]) if rest else ("", "")
            return getattr(self, f"cmd_{command}")(alias, bucket, flags)
        if command == "version" and len(rest) == 2 and rest[0] in ("enable", "suspend"):
            alias, bucket = _split_target(rest[1])
            status = "Enabled" if rest[0] == "enable" else "Suspended"
            self.client(alias).put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
            print(f"{alias}/{bucket} versioning is {status.lower()}")
            return 0
        if command == "anonymous" and len(rest) == 3 and rest[0] == "set":
            return self.cmd_anonymous(rest[1], *_split_target(rest[2]))
        raise McError(f"`mc {' '.join(args)}` is not supported by this stand-in (moto-airgapped: S3 only)")

    def cmd_stat(self, alias: str, bucket: str, flags: set[str]) -> int:
        try:
            self.client(alias).head_bucket(Bucket=bucket)
        except ClientError:
            print(f"mc: <ERROR> Unable to stat `{alias}/{bucket}`. Bucket does not exist.", file=sys.stderr)
            return 1
        print(f"Name      : {bucket}/\nType      : folder")
        return 0

    def cmd_mb(self, alias: str, bucket: str, flags: set[str]) -> int:
        client = self.client(alias)
        try:
            client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket="--with-lock" in flags)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists") and (
                "-p" in flags or "--ignore-existing" in flags
            ):
                return 0
            raise
        print(f"Bucket created successfully `{alias}/{bucket}`.")
        return 0

    def cmd_rm(self, alias: str, bucket: str, flags: set[str]) -> int:
        if not {"-r", "--recursive"} & flags or "--force" not in flags:
            raise McError("only `mc rm -r --force ALIAS/BUCKET` is supported")
        client = self.client(alias)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        return 0

    def cmd_ls(self, alias: str, bucket: str, flags: set[str]) -> int:
        client = self.client(alias)
        if not bucket:
            for found in client.list_buckets().get("Buckets", []):
                print(f"{found['Name']}/")
            return 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                print(f"{obj['Size']:>10} {obj['Key']}")
        return 0

    def cmd_anonymous(self, policy: str, alias: str, bucket: str) -> int:
        client = self.client(alias)
        actions = {
            "download": ["s3:GetObject"],
            "upload": ["s3:PutObject"],
            "public": ["s3:GetObject", "s3:PutObject"],
        }
        if policy == "none":
            client.delete_bucket_policy(Bucket=bucket)
        elif policy in actions:
            statement = {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": actions[policy],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            }
            document = {"Version": "2012-10-17", "Statement": [statement]}
            client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
        else:
            raise McError(f"anonymous policy {policy!r}: expected none, download, upload or public")
        print(f"Access permission for `{alias}/{bucket}` is set to `{policy}`")
        return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    config_dir = DEFAULT_CONFIG_DIR
    if "--config-dir" in args:
        at = args.index("--config-dir")
        config_dir = Path(args[at + 1])
        del args[at : at + 2]
    args = [a for a in args if a not in ("--insecure", "--quiet", "--json")]
    try:
        return Mc(config_dir).run(args)
    except (McError, ClientError, BotoCoreError) as exc:
        print(f"mc: <ERROR> {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
