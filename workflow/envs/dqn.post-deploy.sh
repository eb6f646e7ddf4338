#!/usr/bin/env bash
# Run by Snakemake once, inside the environment of dqn.yaml it has just created, from the folder
# snakemake runs in: the repository root (`python -m dqn...` and `python -m analysis...` of the
# rules find the project there too). Installs what `pip install -e ".[report]"` installs, at the
# exact versions of requirements/constraints.txt; torch first, as in the README's Install.
set -euo pipefail
if ! grep -qs '^name = "dqn-harness"' pyproject.toml; then
    echo "dqn.post-deploy.sh: run snakemake from the repository root (here: $PWD) to use --software-deployment-method conda" >&2
    exit 1
fi
pip install torch==2.13.0
pip install -c requirements/constraints.txt -e ".[report]"
