#!/usr/bin/env bash
# Install LiteLLM's proxy 1.109.1 into bench/.venv-litellm, a venv of its own, for side-by-side measurement only
# (bench/overhead.py uses it when present). Re-running it is a no-op once the venv works.
#
# Plain `pip install 'litellm[proxy]==1.109.1'` fails on this registry: the wheel pins certifi>=2026.10.19 and
# litellm-proxy-extras==0.4.113, which are not published here. So (docs: /work/shared/OFFLINE.md): install the
# wheel's own requirements (base + [proxy]) with those two pins relaxed, then the wheel itself with --no-deps.
set -euo pipefail

VERSION=1.109.1
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
VENV="$BENCH_DIR/.venv-litellm"
PYTHON=${PYTHON:-python3}

check() {
  LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c \
    "import importlib.metadata as m, litellm.proxy.proxy_server; assert m.version('litellm') == '$VERSION'" \
    2>/dev/null
}

if [ -x "$VENV/bin/litellm" ] && check; then
  echo "LiteLLM $VERSION already installed in $VENV"
  exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -m pip download --quiet --no-deps -d "$tmp" "litellm==$VERSION"
wheel=$(ls "$tmp"/litellm-"$VERSION"-*.whl)

# The wheel's Requires-Dist lines for the base package and the [proxy] extra (markers evaluated by `packaging`, as
# pip would), with the two unpublished pins relaxed.
"$VENV/bin/python" -m pip install --quiet packaging
"$VENV/bin/python" - "$wheel" > "$tmp/requirements.txt" <<'PY'
import sys
import zipfile

from packaging.requirements import Requirement

RELAXED = {"certifi", "litellm-proxy-extras"}  # pinned to versions this registry does not publish
with zipfile.ZipFile(sys.argv[1]) as wheel:
    meta = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    lines = wheel.read(meta).decode().splitlines()
for line in lines:
    if not line.startswith("Requires-Dist:"):
        continue
    req = Requirement(line.split(":", 1)[1].strip())
    if req.marker is not None and not req.marker.evaluate({"extra": "proxy"}):
        continue  # another extra, or another Python / platform
    if req.name in RELAXED:
        req.specifier = type(req.specifier)("")
    req.marker = None
    print(req)
PY

"$VENV/bin/python" -m pip install --quiet -r "$tmp/requirements.txt"
"$VENV/bin/python" -m pip install --quiet --no-deps "$wheel"
check || { echo "LiteLLM $VERSION installed but its proxy does not import" >&2; exit 1; }
echo "LiteLLM $VERSION installed in $VENV"
