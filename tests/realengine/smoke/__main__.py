"""One local Command and one secret output: enough to prove state and secrets on the local backend."""

import pulumi
from pulumi_command import local

config = pulumi.Config()
token = config.require_secret("token")

hello = local.Command("hello", create="echo floe-smoke", delete="true")

pulumi.export("stdout", hello.stdout)
pulumi.export("token", token)
