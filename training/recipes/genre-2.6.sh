#!/usr/bin/env bash
# Rebuild the shipped genre-2.6 cold from ../shared/data, step by step as it was made
# (docs/experiments/genre-2.md): genre-2.0 from scratch, trained on twice (2.1, 2.2), the
# mean of 2.1's and 2.2's weights, its head refitted with labels weighted equally, anchors,
# the listener's smoothing chosen on dev-real. Each step's command is also the `built_by`
# of its bundle's manifest.
#
#   training/recipes/genre-2.6.sh [OUT]        (default build/genre-2.6; then sign OUT/genre-2.6)
#
# Budgets are seconds, not epochs: on another machine the epochs differ, and so do the
# weights. Measured on 2 cores: about 5 hours cold (rendering ~1.2 h of it), about 4 with
# the render cache warm. Where PyTorch sees a CUDA GPU the training steps run there.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/genre-2.6}
py=.venv/bin/python
net=(--name genre --widths 32,64,128,192 --splice 0.25 --keep last --workers 2)
big=(--minutes-per-class 240 --clip-s 10 --val-minutes-per-class 30 --val-clip-s 30
     --epochs 80 --anneal-to-budget)
small=(--minutes-per-class 80 --clip-s 10 --val-minutes-per-class 10 --val-clip-s 30 --epochs 0)

"$py" -m training.build "${net[@]}" "${big[@]}" --version 2.0 --out "$out/genre-2.0" \
    --time-budget 3600
"$py" -m training.build "${net[@]}" "${big[@]}" --version 2.1 --out "$out/genre-2.1" \
    --time-budget 4200 --init-from "$out/genre-2.0" --lr 1e-3
"$py" -m training.build "${net[@]}" "${big[@]}" --version 2.2 --out "$out/genre-2.2" \
    --time-budget 5000 --init-from "$out/genre-2.1" --lr 1e-3
"$py" -m training.soup "$out/genre-2.1" "$out/genre-2.2" --out "$out/soup-2.1-2.2"
"$py" -m training.build "${net[@]}" "${small[@]}" --version 2.6 --out "$out/genre-2.6" \
    --init-from "$out/soup-2.1-2.2" --refit-head
"$py" -m training.anchors "$out/genre-2.6"
"$py" -m training.tune_listener "$out/genre-2.6" --write
echo "built $out/genre-2.6: sign it (appliance engine sign $out/genre-2.6 --key KEY)"
