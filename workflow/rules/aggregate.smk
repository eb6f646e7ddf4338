localrules:
    aggregate,


rule aggregate:
    """The tidy results tables of the experiment (docs/DESIGN.md, "Workflow results"):
    `python -m analysis.aggregate`, which a person can also run at any time for a partial picture."""
    input:
        learning_curves=learning_curves,
        dqn_episodes=dqn_episodes,
        random_episodes=random_episodes,
        games_sheet=GAMES_SHEET,
    output:
        scores="results/{experiment}/scores.parquet",
        episodes="results/{experiment}/episodes.parquet",
        learning_curves="results/{experiment}/learning_curves.parquet",
        runs="results/{experiment}/runs.parquet",
        deviations="results/{experiment}/deviations.parquet",
        on_track="results/{experiment}/on_track.parquet",
        provenance="results/{experiment}/provenance.json",
    log:
        "logs/{experiment}/aggregate.log",
    params:
        results=results_folder,
        games=GAMES,
        seeds=SEEDS,
        preset=PRESET,
        overrides=SET_ARGUMENTS,
    conda:
        "../envs/dqn.yaml"
    shell:
        "python -m analysis.aggregate --results {params.results:q} --games {params.games:q} --seeds {params.seeds:q}"
        " --preset {params.preset:q} {params.overrides:q} --games-sheet {input.games_sheet:q}"
        " > {log:q} 2>&1"
