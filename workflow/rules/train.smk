rule train:
    """Train DQN on one game with one seed: `python -m dqn.train`, resumable.

    Only the files dqn.train writes at the very end are outputs, so Snakemake never deletes the
    checkpoint, train log, snapshots or config.json of a failed or interrupted run, and the same
    command run again (a retry, a Slurm resubmission, the next `snakemake`) resumes it from its
    newest checkpoint. A finished run is never re-run for a changed config: the workflow refuses
    to start instead (common.smk, check_planned_runs); delete its folder to train it again.

    When Snakemake deletes the outputs of a job it lost track of (a killed `snakemake` whose
    training went on and finished), dqn.train rebuilds them from the run folder in seconds,
    without a training step. The log is appended to, never truncated: a retry's lines follow the
    earlier attempts', and a job refused because that training still runs leaves its log intact.
    """
    output:
        final=protected(run_file("final.pt")),
        best=protected(run_file("best.pt")),
        learning_curve=protected(run_file("learning_curve.parquet")),
    log:
        "logs/{experiment}/train/{game}/seed{seed}.log",
    params:
        out=run_folder,
        preset=training_preset,
        overrides=training_overrides,
        side_eval_workers=SIDE_EVAL_WORKERS,
    conda:
        "../envs/dqn.yaml"
    # The learner gets all threads but one, left to the training-time evaluator's process; with one
    # thread they share it (the evaluator only works while a new snapshot waits). Profiles set more.
    # trainings_per_gpu > 1 on CUDA: that many trainings share one cluster job (common.smk).
    group: TRAIN_GROUP
    threads: 1
    # Where the job runs, not what it computes: resources, so that a change never retrains.
    resources:
        gpu=training_gpus,
        gres=training_gres,
        device=TRAIN_DEVICE,
        launcher=GPU_LAUNCHER,
        sharing=SHARING_ARGUMENTS,
        learner_threads=learner_threads,
        mem_mb=training_mem_mb,
    shell:
        "{resources.launcher} python -m dqn.train --game {wildcards.game} --seed {wildcards.seed}"
        " --out {params.out:q} --preset {params.preset:q} {params.overrides:q} --device {resources.device}"
        " --threads {resources.learner_threads} --eval-workers {params.side_eval_workers}{resources.sharing}"
        " >> {log:q} 2>&1"


rule gpu_group:
    """With trainings_per_gpu N > 1 on CUDA: ties N trainings together, so that on a cluster they
    run as one job on one GPU (the group train_gpu, see common.smk); it only lists them. Each
    training keeps its own log, run folder, checkpoint and resume; a failed job of the group is
    submitted again, and its finished trainings are rebuilt from their run folders in seconds."""
    input:
        gpu_group_trainings,
    output:
        GPU_GROUP_LIST,
    log:
        "logs/{experiment}/train_gpu/group{index}.log",
    group: TRAIN_GROUP
    threads: 1
    resources:
        runtime=1,
        mem_mb=100,
    conda:
        "../envs/dqn.yaml"
    shell:
        "printf '%s\\n' {input:q} > {output:q} 2> {log:q}"
