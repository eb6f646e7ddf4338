"""Analysis of an experiment's results, apart from the agent library.

    aggregate   the results tables of an experiment from its run folders + CLI
                (`python -m analysis.aggregate`)
    report/     metrics, figures and the self-contained HTML report + CLI (`python -m analysis.report`)

It reads the files that `dqn` (training, evaluation) and `baselines` (the random agent, the
paper's tables) write, so it may import both; neither imports it. Its figures and statistics need
matplotlib, seaborn and scipy, which come with the `report` extra (`pip install -e ".[report]"`),
so that the agent alone installs without them.
"""
