"""bench/gpu_table.py: the README's GPU table is read off a device check's files. Checked on
the committed H200 measurement (bench/measured/) and on edited copies of it, so each cell is
shown to come from its own row."""

import copy
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ROOT / "bench" / "measured" / "2026-12-04-h200"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_table", ROOT / "bench" / "gpu_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench():
    return json.loads((MEASURED / "bench.json").read_text())


def _cells(line):
    return [c.strip() for c in line.strip("|").split("|")]


def test_each_step_cell_is_its_own_rows_value():
    table = _module()
    bench = _bench()
    rows = {r["benchmark"]: r for r in bench["rows"]}
    lines = table.step_table(bench)[2:]
    sides = bench["settings"]["paper_shapes"]["images"]
    assert len(lines) == len(sides) * len(table.MODELS)
    for line in lines:
        model, side, fp32, bf16, ring, speedup, ring_ratio, backbone, peak = _cells(line)
        side = side.removesuffix("px")
        assert fp32 == f"{rows[f'{model}: step images/s, {side}px fp32 (uniform)']['value']:,.0f}"
        assert bf16 == f"{rows[f'{model}: step images/s, {side}px bf16 (uniform)']['value']:,.0f}"
        assert ring == f"{rows[f'{model}: step images/s, {side}px bf16 (ring)']['value']:,.0f}"
        r = rows[f"{model}: ring step / uniform step, {side}px bf16"]
        assert ring_ratio == f"{r['ratio']:.2f} [{r['q1']:.2f}-{r['q3']:.2f}] {r['ok']}"
        assert speedup.startswith(
            f"{rows[f'{model}: bf16 speed-up (fp32 step / bf16 step), {side}px']['ratio']:.2f} [")
        assert backbone.startswith(
            f"{rows[f'{model}: backbone fwd+bwd / training step, {side}px bf16']['ratio']:.2f} [")
        assert peak == f"{rows[f'{model}: peak GPU memory, {side}px bf16 ring step']['value']:.2f}"


def test_a_changed_or_missing_row_changes_only_its_cell():
    table = _module()
    bench = _bench()
    edited = copy.deepcopy(bench)
    name = "moco: step images/s, 96px bf16 (ring)"
    edited["rows"] = [{**r, "value": 1234.0} if r["benchmark"] == name else r
                      for r in edited["rows"]
                      if r["benchmark"] != "cmc: peak GPU memory, 32px bf16 ring step"]
    before, after = table.step_table(bench), table.step_table(edited)
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(changed) == 2
    cmc, moco = sorted(a for _, a in changed)
    assert _cells(moco)[:2] == ["moco", "96px"] and _cells(moco)[4] == "1,234"
    assert _cells(cmc)[:2] == ["cmc", "32px"] and _cells(cmc)[8] == "—"


def test_epoch_table_reads_both_augment_paths_and_marks_a_missing_run():
    table = _module()
    summary = json.loads((MEASURED / "summary.json").read_text())
    lines = table.epoch_table(summary)[2:]
    for line, model in zip(lines, table.MODELS):
        cells = _cells(line)
        assert cells[0] == model
        assert cells[1] == f"{summary['epochs'][model]['epoch_s']:.2f}"
        assert cells[4] == f"{summary['epochs_batch'][model]['images_per_s']:,.0f}"
    del summary["epochs_batch"]["cmc"]
    assert _cells(table.epoch_table(summary)[3])[3:] == ["—", "—"]


def test_render_names_the_gpu_and_every_piece_and_keeps_the_grid_rows():
    text = _module().render(MEASURED)
    assert text.startswith("NVIDIA H200, torch 2.11.0+cu130")
    for piece in ("pytest_gpu", "bench", "make_data", "paper_epochs", "batch_epochs"):
        assert f"{piece} exit 0" in text
    assert "projected GPU-hours, paper CIFAR10/100 + STL10 grid, augment: pil | 14.02 h" in text
    assert "projected GPU-hours, paper CIFAR10/100 + STL10 grid, augment: batch | 13.00 h" in text
