"""How `tokenomy audit` scales: N requests of the demo's shape (its 3,650-request week, repeated with timestamps
shifted a week per copy, so a copy's repeats and prefixes stay within it), audited by the real CLI in a child
process. Reports wall time and peak RSS, and the same-run baseline of merely reading and JSON-parsing the file
(the floor any audit of it pays), so the figure survives a noisy shared box.

    python bench/audit_scale.py --requests 1000000 [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from tokenomy.audit.demo import demo_lines


def write_log(path: Path, requests: int) -> int:
    week = [json.loads(line) for line in demo_lines() if line.endswith("}")]
    written = 0
    with path.open("wb") as f:
        copy = 0
        while written < requests:
            shift = timedelta(days=7 * copy)
            for row in week:
                if written >= requests:
                    break
                at = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")) + shift
                f.write(orjson.dumps({**row, "timestamp": at.isoformat().replace("+00:00", "Z")}) + b"\n")
                written += 1
            copy += 1
    return written


def parse_only(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as f:
        for line in f:
            orjson.loads(line)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="Write the log here and keep it (default: a temporary file).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "audit-scale.jsonl"
        t0 = time.perf_counter()
        count = write_log(path, args.requests)
        print(f"wrote {count:,} requests, {path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        baseline = parse_only(path)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tokenomy", "audit", str(path), "--json"], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"audit failed: {done.stderr.strip()[-500:]}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        report = json.loads(done.stdout)
        print(json.dumps({"requests": count, "gib": round(path.stat().st_size / 2**30, 2),
                          "audit_s": round(wall, 1), "parse_only_s": round(baseline, 1),
                          "audit_over_parse": round(wall / baseline, 2), "peak_rss_mb": round(peak_mb),
                          "requests_read": report.get("requests")}))


if __name__ == "__main__":
    main()
