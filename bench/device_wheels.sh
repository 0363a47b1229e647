#!/usr/bin/env bash
# Wheels for running bench/device_check.sh on a GPU machine that has its own Python and torch
# but no package index (bench/device-wheels.txt: Snakemake, jsonschema, pycocotools, lightly
# and the dependencies that image lacks), for CPython 3.12 on x86-64 Linux.
#
#   bench/device_wheels.sh [DIR]      # default .whl (git-ignore it: echo /.whl/ >> .git/info/exclude)
#
# Then, on the GPU machine, in the repository root (DIR carried along):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site DIR/*.whl
#   PYTHONPATH=/tmp/site:$PWD PYTHON=python3 SNAKEMAKE=/tmp/site/bin/snakemake bench/device_check.sh OUT
# Pins without a binary wheel (antlr4-python3-runtime, connection-pool: pure Python, source
# only) are built here with `pip wheel`. PYTHON_VERSION=3.11 (say) fetches for another CPython.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.whl}"
py="${PYTHON:-python3}"
version="${PYTHON_VERSION:-3.12}"
mkdir -p "$dir"
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1 manylinux_2_24 \
           manylinux_2_31 manylinux_2_34; do
  platforms+=(--platform "${tag}_x86_64")
done
grep -v '^#' bench/device-wheels.txt | while read -r pin; do
  [ -n "$pin" ] || continue
  if ! "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
       --python-version "$version" --implementation cp "${platforms[@]}" -d "$dir" "$pin" \
       >/dev/null 2>&1; then
    echo "device_wheels: no binary wheel of $pin, building it" >&2
    "$py" -m pip wheel -q --disable-pip-version-check --no-deps -w "$dir" "$pin"
  fi
done
echo "device_wheels: $(ls "$dir"/*.whl | wc -l) wheels in $dir ($(du -sh "$dir" | cut -f1))"
