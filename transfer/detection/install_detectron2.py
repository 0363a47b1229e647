"""Install detectron2 0.6's Python package into this interpreter's site-packages, uncompiled.

    python -m transfer.detection.install_detectron2        # what `make install` runs

detectron2 is not published as a wheel. The package index holds its 0.6 sdist as
``pb1-detectron2==0.6``: the same Python files as upstream detectron2 v0.6 plus the model-zoo
configs, but without ``detectron2/layers/csrc``, so ``pip install`` of it fails compiling
``vision.cpp``. On this project's path nothing needs the compiled ops (ROIAlign and NMS come
from torchvision; deformable conv, rotated boxes and the fast COCOeval are not used), so this
command:

1. downloads the sdist with pip (``pip download --no-deps --no-binary :all:``) and checks its
   SHA-256 against :data:`SDIST_SHA256`;
2. unpacks it and copies its ``detectron2/`` package, unchanged, into ``sysconfig``'s purelib;
3. writes a ``detectron2-0.6.dist-info`` (METADATA, INSTALLER, RECORD), so that pip lists it and
   ``pip uninstall detectron2`` (or a later source build) removes exactly these files.

The missing ``detectron2._C`` is answered at import by :mod:`transfer.detection.d2compat`. A
source build with the compiled ops (GPU users; see the README) replaces this install and the
same code runs on it. Running the command again on an installed copy does nothing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["SDIST_REQUIREMENT", "SDIST_SHA256", "VERSION", "INSTALLER", "sha256_of",
           "record_line", "metadata_text", "download_sdist", "unpack_package",
           "install_package", "installed_dist_info", "main"]

SDIST_REQUIREMENT = "pb1-detectron2==0.6"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
VERSION = "0.6"
INSTALLER = "ring-repro (transfer.detection.install_detectron2)"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_line(path: Path, site_packages: Path) -> str:
    """One RECORD row (PEP 376 / the wheel spec): relative path, urlsafe-base64 SHA-256 without
    padding, size in bytes."""
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(site_packages).as_posix()},sha256={digest},{len(data)}"


def metadata_text(version: str = VERSION) -> str:
    """Core metadata of the installed distribution (named ``detectron2``, as a source build)."""
    return (f"Metadata-Version: 2.1\nName: detectron2\nVersion: {version}\n"
            f"Summary: Detectron2 is FAIR's next-generation research platform for object "
            f"detection and segmentation (Python package of the {SDIST_REQUIREMENT} sdist, "
            f"installed without compiled ops by ring-repro)\n"
            f"Home-page: https://github.com/facebookresearch/detectron2\n"
            f"License: Apache-2.0\n")


def download_sdist(dest: Path, requirement: str = SDIST_REQUIREMENT,
                   sha256: str = SDIST_SHA256) -> Path:
    """The sdist of ``requirement`` downloaded into ``dest`` by pip, its hash checked.

    ``--no-build-isolation``: pip reads the sdist's metadata by running its ``setup.py``, which
    imports torch; torch is installed here, so pip uses it rather than an empty build env."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                    "-q", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
                    "-d", str(dest), requirement], check=True)
    found = sorted(dest.glob("*.tar.gz"))
    if len(found) != 1:
        raise FileNotFoundError(f"pip download of {requirement} left {found} in {dest}")
    got = sha256_of(found[0])
    if got != sha256:
        raise ValueError(f"{found[0].name}: SHA-256 {got}, expected {sha256}; refusing to "
                         f"install it")
    return found[0]


def unpack_package(sdist: Path, dest: Path) -> Path:
    """Unpack the sdist into ``dest``; returns its ``detectron2/`` package folder."""
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter="data")
    packages = [p for p in dest.glob("*/detectron2") if (p / "__init__.py").is_file()]
    if len(packages) != 1:
        raise FileNotFoundError(f"{sdist.name} holds no single detectron2/ package: {packages}")
    return packages[0]


def _files(root: Path) -> Iterable[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def install_package(package: Path, site_packages: Path, version: str = VERSION) -> Path:
    """Copy ``package`` into ``site_packages`` and write its dist-info; returns the dist-info.

    A copy already there (an earlier or interrupted install of ours) is replaced."""
    target = site_packages / "detectron2"
    dist_info = site_packages / f"detectron2-{version}.dist-info"
    for old in (target, dist_info):
        if old.exists():
            shutil.rmtree(old)
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(metadata_text(version))
    (dist_info / "INSTALLER").write_text(INSTALLER + "\n")
    (dist_info / "top_level.txt").write_text("detectron2\n")
    rows = [record_line(p, site_packages) for p in [*_files(target), *_files(dist_info)]]
    rows.append(f"{dist_info.name}/RECORD,,")
    (dist_info / "RECORD").write_text("\n".join(rows) + "\n")
    return dist_info


def installed_dist_info(site_packages: Path) -> Optional[Path]:
    """The dist-info of a detectron2 already in ``site_packages``, ours or a source build's
    (editable ones included: their package lives in the clone), or ``None``. Ours writes its
    dist-info last, so one that is there means the package was copied in full."""
    found = sorted(p for p in site_packages.glob("detectron2-*.dist-info")
                   if (p / "METADATA").is_file())
    return found[-1] if found else None


def _installer(dist_info: Path) -> str:
    path = dist_info / "INSTALLER"
    return path.read_text().strip() if path.is_file() else "unknown"


def _ours(dist_info: Path) -> bool:
    return _installer(dist_info) == INSTALLER


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m transfer.detection.install_detectron2",
        description=f"Install detectron2 {VERSION}'s Python package from the package index's "
                    f"{SDIST_REQUIREMENT} sdist into this interpreter's site-packages, without "
                    f"compiling (its compiled ops are not needed on ring-repro's path).")
    parser.add_argument("--sdist", type=Path, default=None,
                        help="use this downloaded sdist instead of pip download (hash checked)")
    parser.add_argument("--site-packages", type=Path,
                        default=Path(sysconfig.get_paths()["purelib"]),
                        help="where to install (default: this interpreter's purelib)")
    parser.add_argument("--force", action="store_true",
                        help="reinstall over an existing copy (never over a source build: "
                             "pip uninstall detectron2 first)")
    args = parser.parse_args(argv)
    existing = installed_dist_info(args.site_packages)
    if existing is not None and (not args.force or not _ours(existing)):
        print(f"detectron2 already installed ({existing.name}, installed by "
              f"{_installer(existing)}): nothing to do")
        return 0
    with tempfile.TemporaryDirectory(prefix="detectron2-sdist-") as tmp:
        try:
            if args.sdist is None:
                sdist = download_sdist(Path(tmp) / "download")
            elif sha256_of(args.sdist) != SDIST_SHA256:
                raise ValueError(f"{args.sdist}: SHA-256 {sha256_of(args.sdist)}, expected "
                                 f"{SDIST_SHA256}")
            else:
                sdist = args.sdist
            package = unpack_package(sdist, Path(tmp) / "src")
        except (subprocess.CalledProcessError, FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        dist_info = install_package(package, args.site_packages)
    print(f"installed detectron2 {VERSION} (Python package only) into {args.site_packages} "
          f"({dist_info.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
