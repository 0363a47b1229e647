rule toy:
    """NCE vs Ring on correlated Gaussians with known mutual information."""
    conda:
        CONDA_ENV
    output:
        csv=f"{RESULTS}/toy/estimates.csv",
        record=f"{RESULTS}/toy/result.json",
    params:
        python=lambda w, output: PY,  # not a re-run trigger: where the suite runs
        t=config["toy"],
        scale=config.get("scale", "default"),
        recipe=config["recipe"],
    log:
        f"{RESULTS}/toy/log.txt",
    shell:
        "{params.python} -m repro.toy --dim {params.t[dim]} --rho {params.t[rho]} --n {params.t[n]}"
        " --num-negatives {params.t[num_negatives]} --seeds {params.t[seeds]}"
        " --csv {output.csv:q} --record {output.record:q} --scale {params.scale:q}"
        " --recipe {params.recipe:q} > {log:q} 2>&1"


if (config["toy"] or {}).get("sphere"):

    rule toy_sphere:
        """NCE, Ring, DCL and HCL on vMF pairs on the sphere (known mutual information)."""
        conda:
            CONDA_ENV
        output:
            csv=f"{RESULTS}/toy/sphere/estimates.csv",
            record=f"{RESULTS}/toy/sphere/result.json",
        params:
            python=lambda w, output: PY,
            t=config["toy"],
            s=config["toy"]["sphere"],
            estimators=json.dumps(config["toy"]["sphere"].get("estimators") or {}),
            scale=config.get("scale", "default"),
            recipe=config["recipe"],
        log:
            f"{RESULTS}/toy/sphere/log.txt",
        shell:
            "{params.python} -m repro.toy --family sphere --dim {params.s[dim]} --kappa {params.s[kappa]}"
            " --n {params.t[n]} --num-negatives {params.t[num_negatives]}"
            " --seeds {params.t[seeds]} --estimators {params.estimators:q}"
            " --csv {output.csv:q} --record {output.record:q} --scale {params.scale:q}"
            " --recipe {params.recipe:q} > {log:q} 2>&1"
