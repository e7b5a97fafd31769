"""`make bench`: run every benchmark script in turn (each writes .bench/<name>.json) and print a summary.

Benchmarks need a quiet machine: run nothing else meanwhile. Figures, machine and method are copied
into docs/benchmarks.md by hand after a run (the JSON files keep the raw numbers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = ["gateway_overhead.py", "local_decode.py", "sdk_overhead.py", "prompts.py", "ingest.py", "rag.py"]
SCRIPTS += ["review.py"]  # human review / online evals
SCRIPTS += ["scorers.py"]  # evaluation scorers (NLI throughput, local scorer quality)
SCRIPTS += ["evals.py"]  # evaluation core (runner throughput, 10k-item RSS)
SCRIPTS += ["cache.py"]  # response caches (exact hit end to end, semantic lookup at 100k entries)
SCRIPTS += ["balancing.py"]  # load balancing (routing overhead per strategy) and cost reports at 100k spans
SCRIPTS += ["limits.py"]  # budgets + rate limits: added p50 of the checks (in-process and Redis)
SCRIPTS += ["batches.py"]  # batches (lines/s vs direct calls; live p50 with a batch running)
SCRIPTS += ["rag_health.py"]  # corpus health (check docs/s and pairs/s vs plain NLI; P/R; background ingest)


def main() -> int:
    failed = []
    for script in SCRIPTS:
        print(f"==> {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]]).returncode != 0:
            failed.append(script)
    for path in sorted((HERE.parent / ".bench").glob("*.json")):
        print(f"--- {path.stem}\n{json.dumps(json.loads(path.read_text()), indent=1)[:2000]}")
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
