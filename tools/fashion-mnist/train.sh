#!/usr/bin/env bash
# The Fashion-MNIST run whose log, curves, weights and test line are in this folder (docs/training.md).
# It was stopped once with SIGTERM after epoch 27 and resumed with the same command (--resume picks up the last checkpoint).
set -euo pipefail
xception train --data fashion-mnist --model xception-mini --epochs 70 --batch 128 --lr 0.1 --nesterov --momentum 0.9 \
  --weight-decay 5e-4 --label-smoothing 0.1 --warmup-steps 420 --lr-schedule cosine --augment shift:2 \
  --val-split 0.1 --seed 0 --checkpoint-dir runs/fashion-mnist-70 --resume runs/fashion-mnist-70
xception eval --weights runs/fashion-mnist-70/final.safetensors --data fashion-mnist
