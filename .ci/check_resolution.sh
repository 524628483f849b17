#!/usr/bin/env bash
# The pins must also resolve for an ordinary Linux user: the public package index only, without
# this machine's pip configuration (its local wheels and constraints). There torch==2.13.0 is the
# CUDA build, which requires its own triton; a conflicting pin fails here, before any test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plain_pip() {
  env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL \
      PIP_CONFIG_FILE=/dev/null "$tmp/venv/bin/python" -m pip --disable-pip-version-check "$@"
}
python3 -m venv "$tmp/venv"
plain_pip install --quiet --upgrade pip
plain_pip install --dry-run --ignore-installed --quiet --report "$tmp/report.json" \
    -r requirements.txt
"$tmp/venv/bin/python" - "$tmp/report.json" <<'PY'
import json, sys
installs = {i["metadata"]["name"].lower(): i["metadata"]["version"]
            for i in json.load(open(sys.argv[1]))["install"]}
print("requirements.txt resolves on the public index: "
      + ", ".join(f"{name} {installs[name]}" for name in ("torch", "triton") if name in installs))
PY
