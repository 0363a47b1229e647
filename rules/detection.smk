# Detection / segmentation / keypoint fine-tuning of pretrained query encoders
# (python -m transfer.detection.train). Helpers (DETECTION_DIR, detection_options, ...) are in
# rules/common.smk.


rule detection_data:
    """The generated COCO-format shapes dataset (boxes, masks, keypoints)."""
    conda:
        CONDA_ENV
    output:
        f"{DETECTION_DATA}/annotations/instances_val2017.json",
        f"{DETECTION_DATA}/annotations/person_keypoints_val2017.json",
    params:
        g=generated_detection_settings(),
        python=lambda w, output: PY,
        data=lambda w, output: DETECTION_DATA,
    log:
        f"{RESULTS}/detection/data/log.txt",
    shell:
        "{params.python} -m transfer.detection.synthetic {params.data:q}"
        " --train {params.g[train]} --val {params.g[val]} --size {params.g[size]} > {log:q} 2>&1"


rule detection:
    """Fine-tune one checkpoint on one detection task; COCO-style AP record."""
    input:
        unpack(detection_inputs),
    conda:
        CONDA_ENV
    output:
        record=f"{DETECTION_DIR}/result.json",
    params:
        options=detection_options,
        python=lambda w, output: PY,
    wildcard_constraints:
        task="|".join(DETECTION_TASKS),
    threads: int(config["pretrain"].get("threads", 1))
    resources:
        gpu=detection_gpus(),
    log:
        f"{DETECTION_DIR}/stderr.txt",
    benchmark:
        f"{BENCHMARKS}/detection/{{task}}/{{dataset}}/{{model}}-{{sampler}}/seed{{seed}}.tsv"
    shell:
        "{params.python} -m transfer.detection.train --checkpoint {input.checkpoint:q} --task {wildcards.task}"
        " --out {output.record:q} --seed {wildcards.seed} --threads {threads} {params.options}"
        " --no-progress 2> {log:q}"
