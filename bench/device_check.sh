#!/usr/bin/env bash
# The device check: everything this suite measures on one GPU, in one script (<= 8 minutes on
# one current GPU), every result written under one folder.
#
#   bench/device_check.sh [OUT]        # OUT: an argument, else $OUT, else ./device_check
#   DEVICE_CHECK_TINY=1 bench/device_check.sh OUT   # the same pieces on the CPU at tiny sizes
#                                                   # (tests/test_device_check.py runs it)
#
# Needs the project's environment (make install; lightly for the peer rows: pip install -e
# .[bench]); PYTHON and SNAKEMAKE name the interpreter and Snakemake (default: .venv's when
# there is one, else python3 / snakemake on PATH). Pieces, each with its own time limit, its
# output and exit status in OUT:
#   1. pytest -m gpu                          -> pytest_gpu.txt, pytest_gpu.xml
#   2. bench/run.py --device cuda (paper-shape rows, --peers when lightly is installed)
#                                             -> bench.md, bench.json (rewritten after each
#                                                benchmark group: a stopped bench keeps what it
#                                                measured), bench.log
#   3. one paper.yaml epoch per base model (ring) through Snakemake with --resources gpu=1 on a
#      generated CIFAR-10 (50,000 32x32 images in CIFAR-10's python pickle layout, read by
#      repro.data's real reader)             -> data/, epoch.yaml, results/, snakemake.txt
#   4. the same epochs with pretrain.augment: batch (the views made on the GPU)
#                                             -> epoch_batch.yaml, results_batch/, snakemake_batch.txt
#   summary.json: each piece's exit status and seconds, each model's epoch time and images/s
#   (epochs: paper.yaml's PIL loader; epochs_batch: augment: batch).
# Exit status: 0 when every piece passed, else 1 (the others still ran).
set -u -o pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-device_check}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -x .venv/bin/python ]; then py_default=.venv/bin/python; sm_default=.venv/bin/snakemake
else py_default=python3; sm_default=snakemake; fi
py="${PYTHON:-$py_default}"
sm="${SNAKEMAKE:-$sm_default}"
tiny="${DEVICE_CHECK_TINY:-0}"
status="$out/status.tsv"
printf 'piece\texit\tseconds\n' > "$status"

piece() {  # piece NAME LIMIT_S LOG COMMAND...: run with a time limit, record exit and seconds
  local name=$1 limit=$2 log=$3; shift 3
  local start=$SECONDS
  echo "== $name (limit ${limit}s)" >&2
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >> "$status"
  echo "   exit $rc after $((SECONDS - start))s; log $log" >&2
}

"$py" - > "$out/environment.txt" 2>&1 <<'PY'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__,
      "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
PY

# 1. the GPU tests (skipped without CUDA)
piece pytest_gpu 60 "$out/pytest_gpu.txt" \
  env OMP_NUM_THREADS=1 "$py" -m pytest -m gpu -q -p no:cacheprovider --junitxml "$out/pytest_gpu.xml" tests/test_gpu.py

# 2. the bench: paper-shape rows on CUDA, tiny on the CPU
peers=""
"$py" -c "import lightly" 2>/dev/null && peers="--peers"
if [ "$tiny" = 1 ]; then
  piece bench 300 "$out/bench.log" "$py" bench/run.py --quick --device cpu --repeats 2 --threads 1 \
    $peers --json "$out/bench.json" --markdown "$out/bench.md"
else
  piece bench 180 "$out/bench.log" "$py" bench/run.py --device cuda --repeats 5 --paper-shapes \
    $peers --json "$out/bench.json" --markdown "$out/bench.md"
fi

# 3. one paper-config epoch per base model, through Snakemake, on a generated CIFAR-10
if [ "$tiny" = 1 ]; then train=500; test=50; else train=50000; test=10000; fi
piece make_data 30 "$out/make_data.txt" "$py" bench/cifar_shaped.py "$out/data" --train $train --test $test
cat > "$out/epoch.yaml" <<YAML
# on top of config/paper.yaml: one epoch of each base model with the ring on the generated CIFAR-10
results_dir: $out/results
seeds: [0]
samplers:
  ring: {name: ring, w_l: 0.9, w_u: 0.99, schedule: linear, w_l_start: 0.0, anneal_fraction: 0.5}
pretrain:
  datasets: [cifar10]
  data_root: $out/data
  epochs: 1
YAML
if [ "$tiny" = 1 ]; then cat >> "$out/epoch.yaml" <<'YAML'
  backbone: {arch: resnet18, cifar_stem: true, width: 0.0625}
  batch_size: 32
  num_workers: 1
  threads: 1
  gpus: 0
models:
  ir: {num_negatives: 64, bank_momentum: 0.5}
  cmc: {num_negatives: 64, bank_momentum: 0.5}
  moco: {queue_size: 256, key_momentum: 0.999}
  simclr: {}
YAML
fi
targets=(); targets_batch=()
for model in ir cmc moco simclr; do
  targets+=("$out/results/pretrain/cifar10/$model-ring/seed0/result.json")
  targets_batch+=("$out/results_batch/pretrain/cifar10/$model-ring/seed0/result.json")
done
piece paper_epochs 120 "$out/snakemake.txt" "$sm" --cores all --resources gpu=1 \
  --show-failed-logs "${targets[@]}" --configfile config/paper.yaml "$out/epoch.yaml"

# 4. the same epochs with the views made on the device (pretrain.augment: batch), own folder
printf 'results_dir: %s/results_batch\npretrain: {augment: batch}\n' "$out" > "$out/epoch_batch.yaml"
piece batch_epochs 90 "$out/snakemake_batch.txt" "$sm" --cores all --resources gpu=1 \
  --show-failed-logs "${targets_batch[@]}" \
  --configfile config/paper.yaml "$out/epoch.yaml" "$out/epoch_batch.yaml"

"$py" - "$out" <<'PY'
import csv, json, sys
from pathlib import Path
out = Path(sys.argv[1])
with open(out / "status.tsv") as fh:
    pieces = {r["piece"]: {"exit": int(r["exit"]), "seconds": int(r["seconds"])}
              for r in csv.DictReader(fh, delimiter="\t")}
def epochs(results):
    found = {}
    for model in ("ir", "cmc", "moco", "simclr"):
        path = out / results / "pretrain" / "cifar10" / f"{model}-ring" / "seed0" / "result.json"
        if path.exists():
            record = json.loads(path.read_text())
            extra, wall, pretrain = record["extra"], record["wall_time_s"], record["config"]["pretrain"]
            found[model] = {"epoch_s": round(wall, 2),
                            "images_per_s": round(extra["steps"] * pretrain["batch_size"] / wall, 1),
                            "final_loss": record["metrics"]["final_loss"],
                            "device": extra["device"],
                            "precision": pretrain.get("precision", "fp32"),
                            "augment": pretrain.get("augment", "pil")}
    return found
summary = {"pieces": pieces, "epochs": epochs("results"), "epochs_batch": epochs("results_batch"),
           "total_s": sum(p["seconds"] for p in pieces.values())}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
print(json.dumps(summary, indent=1))
PY
awk -F'\t' 'NR > 1 && $2 != 0 { bad = 1 } END { exit bad }' "$status"
