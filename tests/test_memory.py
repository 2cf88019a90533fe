"""glibc malloc tuning (exporter/memory.py); its effect on RSS is measured by benchmarks/poll.py."""

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the tuning is for glibc only")
def test_glibc_accepts_the_tuning_and_the_trim():
    code = "from exporter import memory\nassert memory.tune_malloc() is True\nmemory.release_free_memory()\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
