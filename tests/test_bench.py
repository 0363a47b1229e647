"""bench/run.py: the quick mode runs end to end and reports every ratio (no timing asserts)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_prints_the_ratio_table_and_saves_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick",
                           "--models", "ir", "simclr", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("machine: ") and "device cpu" in proc.stdout
    result = json.loads(out.read_text())
    names = [r["benchmark"] for r in result["rows"]]
    assert any(n.startswith("ring selection, MoCo queue") for n in names)
    assert any(n.startswith("ring selection, IR bank") for n in names)
    assert "ir: ring step / uniform step" in names
    assert "simclr: backbone fwd+bwd / training step (uniform)" in names
    assert any(n.startswith("augmentation throughput") for n in names)
    for row in result["rows"]:
        if row["measured"] != "skipped" and row["ratio"] is not None:
            assert row["ratio"] > 0 and row["benchmark"] in proc.stdout
