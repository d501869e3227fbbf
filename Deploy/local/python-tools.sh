#!/usr/bin/env bash
# Python programs the tests use as independent peers (a Standard Webhooks verifier), in a
# virtual environment under .services/python (or $MINGUS_SERVICES_DIR/python, as services.sh
# and the tests read it). Idempotent: does nothing once installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${MINGUS_SERVICES_DIR:-.services}/python"
requirements=Deploy/local/python-requirements.txt
ast_lock=Deploy/local/ast_parse_lock.py
stamp="$venv/.installed-$(cat "$requirements" "$ast_lock" | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && exit 0
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  apt-get install -y -qq python3-venv >/dev/null
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
site_packages="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
cp "$ast_lock" "$site_packages/"
echo "import ast_parse_lock" > "$site_packages/ast_parse_lock.pth"
touch "$stamp"
echo "python-tools: installed $(tr '\n' ' ' < "$requirements")into $venv"
