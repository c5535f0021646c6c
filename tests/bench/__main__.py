"""`make bench`: run every tests/bench/bench_*.py (or those named in BENCH_ARGS) in turn,
each in its own process, and print their figures."""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
names = sys.argv[1:] or sorted(p.stem for p in here.glob("bench_*.py"))
failed = []
for name in names:
    name = name if name.startswith("bench_") else f"bench_{name}"
    print(f"\n##### {name}", flush=True)
    if subprocess.run([sys.executable, "-m", f"tests.bench.{name}"], cwd=here.parents[1]).returncode:
        failed.append(name)
if failed:
    print(f"\nbenchmarks that failed: {', '.join(failed)}")
    sys.exit(1)
