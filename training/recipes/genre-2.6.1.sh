#!/usr/bin/env bash
# Rebuild the shipped genre-2.6.1 cold from ../shared/data: genre-2.6 (genre-2.6.sh), its FP32
# model quantised again with 8-bit weights and the first two convolutions and the Gemms left
# in float (docs/experiments/genre-2.md, "INT8 agreement"), the listener's smoothing chosen
# again on dev-real for the new INT8 model.
#
#   training/recipes/genre-2.6.1.sh [OUT]     (default build/genre-2.6; then sign OUT/genre-2.6.1)
#
# genre-2.6.sh is about 5 hours cold on 2 cores; the steps here add about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/genre-2.6}
py=.venv/bin/python

training/recipes/genre-2.6.sh "$out"
"$py" -m training.requantize "$out/genre-2.6" --version 2.6.1 --out "$out/genre-2.6.1" \
    --weights-8bit --float-ops Gemm \
    --float-nodes /features/features.0/conv/Conv /features/features.1/conv/Conv
"$py" -m training.tune_listener "$out/genre-2.6.1" --write
echo "built $out/genre-2.6.1: sign it (appliance engine sign $out/genre-2.6.1 --key KEY)"
