rule toy:
    """NCE vs Ring on correlated Gaussians with known mutual information."""
    output:
        csv=f"{RESULTS}/toy/estimates.csv",
        record=f"{RESULTS}/toy/result.json",
    params:
        t=config["toy"],
        scale=config.get("scale", "default"),
    log:
        f"{RESULTS}/toy/log.txt",
    shell:
        "{PY} -m repro.toy --dim {params.t[dim]} --rho {params.t[rho]} --n {params.t[n]}"
        " --num-negatives {params.t[num_negatives]} --seeds {params.t[seeds]}"
        " --csv {output.csv} --record {output.record} --scale {params.scale:q} > {log} 2>&1"
