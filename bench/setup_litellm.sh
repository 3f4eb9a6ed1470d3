#!/usr/bin/env bash
# Install LiteLLM's proxy 1.109.1 into bench/.venv-litellm, for side-by-side measurement only.
# Plain `pip install 'litellm[proxy]==1.109.1'` fails on a registry without certifi>=2026.10.19 and
# litellm-proxy-extras==0.4.113, so: install the wheel's own requirements (base + [proxy]) with those two pins
# relaxed, then the wheel itself with --no-deps.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-litellm
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
tmp=$(mktemp -d)
"$VENV/bin/pip" download --quiet --no-deps -d "$tmp" litellm==1.109.1
wheel=$(ls "$tmp"/litellm-1.109.1-*.whl)
"$VENV/bin/python" - "$wheel" > "$tmp/requirements.txt" <<'PY'
import re, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = z.read(meta).decode().splitlines()
for line in lines:
    if not line.startswith("Requires-Dist:"):
        continue
    req = line.split(":", 1)[1].strip()
    spec, _, marker = req.partition(";")
    marker = marker.replace("'", '"')
    if "extra ==" in marker and 'extra == "proxy"' not in marker:
        continue
    marker = re.sub(r'\s*(and\s+)?extra == "proxy"', "", marker).strip()
    marker = re.sub(r"^and\s+", "", marker)
    name = re.split(r"[<>=!~ \[(]", spec.strip(), maxsplit=1)[0]
    if name in ("certifi", "litellm-proxy-extras"):
        spec = name
    print(spec.strip() + (f"; {marker}" if marker else ""))
PY
"$VENV/bin/pip" install --quiet -r "$tmp/requirements.txt"
"$VENV/bin/pip" install --quiet --no-deps "$wheel"
LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c "import litellm; print('litellm', litellm.__version__ if hasattr(litellm, '__version__') else 'ok')"
rm -rf "$tmp"
