"""The benchmark scripts run and their built-in correctness checks hold (figures are not asserted)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_logs_benchmark_counts_a_backlog_exactly():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "logs.py"), "--events", "30000",
                             "--parse", "2000"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "events counted     30,000 (exactly the backlog)" in result.stdout
    assert "events/s" in result.stdout
