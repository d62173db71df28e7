#!/bin/sh
# floe-testinfra: entry point of nessie-airgapped, to the part of the Polaris image's run-java.sh contract the
# Polaris chart uses: java with JAVA_OPTS and JAVA_OPTS_APPEND, from /deployments (where Quarkus finds
# config/application.properties), replacing the shell so signals reach the JVM.
set -eu
cd /deployments
# shellcheck disable=SC2086  # word lists, as run-java.sh reads them
exec java ${JAVA_OPTS:-} ${JAVA_OPTS_APPEND:-} -jar /deployments/nessie-quarkus-runner.jar "$@"
