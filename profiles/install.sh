#!/usr/bin/env bash
# Make `snakemake --profile slurm` (the name alone) find this repository's Slurm profile.
#
#   bash profiles/install.sh          # links profiles/slurm as $XDG_CONFIG_HOME/snakemake/slurm
#
# Snakemake looks a bare profile name up in $XDG_CONFIG_HOME/snakemake/ (~/.config/snakemake/)
# and /etc/xdg/snakemake/, not in the working directory. The link keeps one copy of the profile:
# the ADAPT edits made in profiles/slurm/config.yaml are the ones `--profile slurm` reads.
set -euo pipefail
source_dir="$(cd "$(dirname "$0")/slurm" && pwd)"
target_root="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
target="$target_root/slurm"
mkdir -p "$target_root"
if [ -e "$target" ] && [ ! -L "$target" ]; then
    echo "error: $target exists and is not a link to this repository's profile; move it away first" >&2
    exit 2
fi
ln -sfn "$source_dir" "$target"
echo "snakemake --profile slurm now reads $source_dir/config.yaml (linked from $target)"
