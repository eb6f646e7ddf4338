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
        device=device_of_training,
        launcher=training_launcher,
        sharing=training_sharing,
        side_eval_workers=SIDE_EVAL_WORKERS,
    conda:
        "../envs/dqn.yaml"
    # The learner gets all threads but one, left to the training-time evaluator's process; with one
    # thread they share it (the evaluator only works while a new snapshot waits). Profiles set more.
    # On CUDA, --group-components train_gpu=N (N > 1) puts N trainings in one cluster job (common.smk).
    group: TRAIN_GROUP
    threads: 1
    resources:
        gpu=training_gpus,
        gres=training_gres,
        learner_threads=learner_threads,
        mem_mb=training_mem_mb,
    shell:
        "{params.launcher} python -m dqn.train --game {wildcards.game} --seed {wildcards.seed}"
        " --out {params.out:q} --preset {params.preset:q} {params.overrides:q} --device {params.device}"
        " --threads {resources.learner_threads} --eval-workers {params.side_eval_workers}{params.sharing}"
        " >> {log:q} 2>&1"

