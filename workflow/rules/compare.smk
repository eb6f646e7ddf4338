# The experiment against each one named in the config's `compare_with`: python -m analysis.compare
# with the named experiment as A (the one compared with) and this one as B (the one with the change).
# The named experiments' tables must exist already (each one's own workflow run wrote them); they
# are never rebuilt from here, since this run does not know their plan.

localrules:
    compare,


rule compare:
    """This experiment (B) against `baseline` (A), game by game: the page and its two figures. Only the
    report's bootstrap options are parameters, as for the report."""
    input:
        a_scores="results/{baseline}/scores.parquet",
        a_tables=expand("results/{{baseline}}/{table}", table=COMPARE_TABLES[1:]),
        b_scores=rules.aggregate.output.scores,
        b_tables=[rules.aggregate.output[name] for name in ("episodes", "learning_curves", "runs", "deviations",
                                                            "provenance")],
    output:
        html=report("reports/compare/{baseline}_vs_{experiment}.html", caption="../report/compare.rst",
                    category="Comparison"),
        performance_profile=report("reports/compare/{baseline}_vs_{experiment}_figures/performance_profile.png",
                                   caption="../report/compare.rst", category="Comparison"),
        learning_curves=report("reports/compare/{baseline}_vs_{experiment}_figures/learning_curves.png",
                               caption="../report/compare.rst", category="Comparison"),
    wildcard_constraints:
        baseline="|".join(re.escape(name) for name in COMPARE_WITH) or "(?!)",
    log:
        "logs/{experiment}/compare_{baseline}.log",
    params:
        a=compared_folder,
        b=comparing_folder,
        figures=compare_figures_folder,
        bootstrap_repetitions=REPORT["bootstrap_repetitions"],
        bootstrap_seed=REPORT["bootstrap_seed"],
    conda:
        "../envs/dqn.yaml"
    shell:
        "python -m analysis.compare {params.a:q} {params.b:q} --out {output.html:q} --figures-dir {params.figures:q}"
        " --bootstrap-reps {params.bootstrap_repetitions} --seed {params.bootstrap_seed}"
        " > {log:q} 2>&1"
