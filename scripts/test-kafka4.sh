#!/bin/sh
# Runs the integration suite (or the test files given) against an Apache Kafka 4 broker instead of the default 3.9:
#   npm run test:kafka4                                         # test/integration, Kafka 4.1.1
#   npm run test:kafka4 -- test/integration/email-delivery.test.ts
#   KAFKA_VERSION=4.0.1 npm run test:kafka4                     # another 4.x
# The jars come from Maven Central on first use (into .cache/kafka-<version>), like the default broker's.
set -eu
export KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
# An external broker would defeat the point: the harness must start the version asked for.
unset KAFKA_BROKERS
if [ "$#" -eq 0 ]; then set -- test/integration; fi
exec npx vitest run "$@"
