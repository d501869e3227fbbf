#!/usr/bin/env bash
# Static checks of the deploy artifacts (make test runs it; about ten seconds):
# - Kubernetes manifests, the compose file, the Dockerfile and the Grafana dashboard
#   (Deploy/local/check_deploy.py: kubernetes-validate for built-in kinds, the operators'
#   documented fields for theirs, and agreement with the worker executables);
# - Prometheus rules: `promtool check rules`, and `promtool test rules` on the unit tests beside
#   them. promtool comes from Debian's prometheus package, unpacked under the services' folder
#   (the server itself is neither installed nor started).
set -euo pipefail
cd "$(dirname "$0")/../.."
services="${MINGUS_SERVICES_DIR:-.services}"
python="$services/python/bin/python"
[ -x "$python" ] || Deploy/local/python-tools.sh

promtool="$(command -v promtool || true)"
if [ -z "$promtool" ]; then
  tools="$(cd "$services" && pwd)/tools"
  promtool="$tools/usr/bin/promtool"
  if [ ! -x "$promtool" ]; then
    mkdir -p "$tools"
    download="$(mktemp -d)"
    trap 'rm -rf "$download"' EXIT
    (cd "$download" && apt-get download -qq prometheus >/dev/null 2>&1) \
      || { apt-get update -qq && (cd "$download" && apt-get download -qq prometheus); }
    dpkg-deb -x "$download"/prometheus_*.deb "$tools"
  fi
fi

"$python" Deploy/local/check_deploy.py "$services/python/bin/kubernetes-validate"
"$promtool" check rules Deploy/prometheus/mingus-rules.yaml >/dev/null
(cd Deploy/prometheus && "$promtool" test rules mingus-rules.test.yaml >/dev/null)
echo "check-deploy: manifests, compose file, Dockerfile, dashboard and Prometheus rules are consistent"
