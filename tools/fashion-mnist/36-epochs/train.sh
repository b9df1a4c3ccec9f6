#!/usr/bin/env bash
# The 36-epoch Fashion-MNIST run whose log, curves, weights and test line are in this folder (docs/training.md).
set -euo pipefail
xception train --data fashion-mnist --model xception-mini --epochs 36 --batch 128 --lr 0.1 --nesterov --momentum 0.9 \
  --weight-decay 5e-4 --label-smoothing 0.1 --warmup-steps 420 --lr-schedule cosine --augment shift:2 \
  --random-erasing 0.25 --val-split 0.1 --seed 0 --checkpoint-dir runs/fashion-mnist-95
xception eval --weights runs/fashion-mnist-95/final.safetensors --data fashion-mnist
