"""detectron2 without compiled ops: the install (transfer.detection.install_detectron2) and the
compatibility shims applied at import (transfer.detection.d2compat).

The install tests read the copy `make install` put in this venv and make a second one from the
same package into a temporary folder; the shim tests run in fresh interpreters, so that what
one test sets up is not what the next one sees."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from transfer.detection import install_detectron2 as inst

SITE = Path(sysconfig.get_paths()["purelib"])
ROOT = Path(__file__).resolve().parents[1]
needs_d2 = pytest.mark.skipif(inst.installed_dist_info(SITE) is None,
                              reason="detectron2 is not installed here (make install)")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_record_line_is_the_wheel_specs_urlsafe_sha256_and_size(tmp_path):
    (tmp_path / "pkg").mkdir()
    path = tmp_path / "pkg" / "a.py"
    path.write_bytes(b"x = 1\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"x = 1\n").digest()).rstrip(b"=").decode()
    assert inst.record_line(path, tmp_path) == f"pkg/a.py,sha256={digest},6"
    assert "=" not in digest and len(digest) == 43


def test_install_package_copies_the_package_unchanged_and_records_every_file(tmp_path):
    source = tmp_path / "src" / "detectron2"
    (source / "layers").mkdir(parents=True)
    (source / "__init__.py").write_text('__version__ = "0.6"\n')
    (source / "layers" / "nms.py").write_text("from detectron2 import _C\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    site = tmp_path / "site"
    site.mkdir()
    dist_info = inst.install_package(source, site)
    assert (site / "detectron2" / "layers" / "nms.py").read_text() == "from detectron2 import _C\n"
    assert not (site / "detectron2" / "__pycache__").exists()
    rows = (dist_info / "RECORD").read_text().splitlines()
    assert {r.split(",")[0] for r in rows} == {
        "detectron2/__init__.py", "detectron2/layers/nms.py",
        "detectron2-0.6.dist-info/METADATA", "detectron2-0.6.dist-info/INSTALLER",
        "detectron2-0.6.dist-info/top_level.txt", "detectron2-0.6.dist-info/RECORD"}
    assert "Name: detectron2\nVersion: 0.6\n" in (dist_info / "METADATA").read_text()
    assert inst.installed_dist_info(site) == dist_info
    # a second install replaces the first: no file of the old copy is left behind
    (site / "detectron2" / "stale.py").write_text("")
    inst.install_package(source, site)
    assert not (site / "detectron2" / "stale.py").exists()


def test_the_install_leaves_a_source_build_alone(tmp_path, capsys):
    dist_info = tmp_path / "detectron2-0.6.dist-info"  # an editable source build's
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: detectron2\n")
    (dist_info / "INSTALLER").write_text("pip\n")
    assert inst.main(["--site-packages", str(tmp_path), "--force"]) == 0
    assert "installed by pip): nothing to do" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detectron2-0.6.dist-info"]


def test_a_file_with_the_wrong_hash_is_refused(tmp_path, capsys):
    fake = tmp_path / "pb1-detectron2-0.6.tar.gz"
    fake.write_bytes(b"not the sdist")
    assert inst.main(["--sdist", str(fake), "--site-packages", str(tmp_path), "--force"]) == 2
    assert "expected " + inst.SDIST_SHA256 in capsys.readouterr().err
    assert not (tmp_path / "detectron2").exists()


@needs_d2
def test_installed_detectron2_matches_its_record_byte_for_byte():
    dist_info = inst.installed_dist_info(SITE)
    assert (dist_info / "INSTALLER").read_text().strip() == inst.INSTALLER
    rows = [r.split(",") for r in (dist_info / "RECORD").read_text().splitlines()]
    files = [(path, digest, size) for path, digest, size in rows if digest]
    on_disk = {p.relative_to(SITE).as_posix() for p in (SITE / "detectron2").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert {path for path, _, _ in files if path.startswith("detectron2/")} == on_disk
    assert "detectron2/model_zoo/configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml" \
        in on_disk
    for path, digest, size in files:
        data = (SITE / path).read_bytes()
        want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (f"sha256={want}", str(len(data))) == (digest, size), path
    assert not (SITE / "detectron2" / "layers" / "csrc").exists()
    assert not list((SITE / "detectron2").glob("_C*"))  # no compiled extension


@needs_d2
def test_running_the_install_again_changes_nothing(capsys):
    record = (inst.installed_dist_info(SITE) / "RECORD").read_bytes()
    assert inst.main([]) == 0
    assert "already installed" in capsys.readouterr().out
    assert (inst.installed_dist_info(SITE) / "RECORD").read_bytes() == record


@pytest.mark.slow
@needs_d2
def test_compiled_op_call_raises_clear_error():
    result = _python(
        "from transfer.detection import d2compat; d2compat.prepare()\n"
        "from detectron2.layers.rotated_boxes import pairwise_iou_rotated\n"
        "import torch\n"
        "try:\n"
        "    pairwise_iou_rotated(torch.zeros(1, 5), torch.zeros(1, 5))\n"
        "except d2compat.CompiledOpsMissing as err:\n"
        "    print(err)\n")
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert message.startswith("detectron2._C.box_iou_rotated: detectron2 was installed without "
                              "compiled ops")
    assert "rotated boxes" in message and "detectron2.git@v0.6" in message


@pytest.mark.slow
@needs_d2
def test_detectron2_without_prepare_fails_on_the_missing_compiled_module():
    result = _python("import detectron2.layers")
    assert result.returncode != 0 and "_C" in result.stderr


@pytest.mark.slow
@needs_d2
def test_placeholder_answers_dunder_probes_and_detectron2s_own_env_report():
    result = _python(
        "from transfer.detection import d2compat; d2compat.prepare()\n"
        "import detectron2._C as c\n"
        "print(hasattr(c, '__path__'), d2compat.compiled_ops_available())\n"
        "from detectron2.utils.collect_env import collect_env_info\n"
        "print([line for line in collect_env_info().splitlines() if 'Compiler' in line])\n")
    lines = result.stdout.split("\n")
    assert lines[0] == "False False", result.stderr
    assert "installed without compiled ops" in lines[1] and "Compiler" in lines[1]


def test_aliases_exist_after_prepare_and_mean_what_they_meant():
    result = _python(
        "import warnings; warnings.simplefilter('error')\n"
        "from transfer.detection import d2compat; d2compat.prepare()\n"
        "import numpy as np; from PIL import Image\n"
        "print(np.float is float, np.int is int, np.object is object, np.str is str,\n"
        "      np.dtype(np.bool) == np.dtype(bool), Image.LINEAR == Image.BILINEAR)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 6


def test_shims_edit_nothing_on_disk():
    assert not list(SITE.glob("sitecustomize.py")) and not list(SITE.glob("usercustomize.py"))
    assert not list(SITE.glob("*.pth")) or all(
        "d2compat" not in p.read_text() for p in SITE.glob("*.pth"))
    before = {p: p.stat().st_mtime_ns for p in SITE.glob("detectron2/**/*.py")}
    result = _python("from transfer.detection import d2compat; d2compat.prepare()\n"
                     "import importlib.util; print(importlib.util.find_spec('detectron2') "
                     "is not None)")
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in SITE.glob("detectron2/**/*.py")} == before
