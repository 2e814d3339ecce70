#!/usr/bin/env bash
# The GPU figures of README's "GPUs" section, in one call (about 6 minutes on one H100):
# drkd-bench speed at CIFAR-100 shape (synthetic images, speed only) for the paper's three
# students: every method and teacher source against the bare step, peak GPU memory, the harness
# epoch against a reference-style fp32 loop with a PIL DataLoader, torch.compile (ResNet-18),
# 1-4 CE cells sharing the GPU, and the projected wall time of paper-cifar100 on 1 and 8 GPUs.
# CSVs go to OUT (default results/published/gpu), with nvidia-smi's view of the device.
#
#   scripts/gpu-check.sh            on the GPU
#   scripts/gpu-check.sh --tiny     the same steps on the CPU at toy sizes, 8x8 images (run by
#                                   the tests; its figures mean nothing)
set -euo pipefail
tiny=0
if [ "${1:-}" = "--tiny" ]; then tiny=1; shift; fi
out=${1:-results/published/gpu}
mkdir -p "$out"
archs=(--arch resnet18 --arch mobilenetv2 --arch shufflenetv2)
if [ "$tiny" = 1 ]; then
    sizes=(--dataset digits --device cpu --batch 4 --steps 1 --repeats 1 --epoch-images 8
           --loader-workers 0 --cells-per-gpu 1,2)
else
    sizes=(--dataset cifar100 --device cuda --batch 128 --steps 20 --repeats 3
           --epoch-images 10000 --loader-workers 8 --cells-per-gpu 1,2,3,4 --compile resnet18)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/device.csv"
fi
started=$(date +%s)
drkd-bench speed "${archs[@]}" "${sizes[@]}" --project paper-cifar100 \
    --results "$out" | tee "$out/speed.txt"
echo "gpu-check: $(( $(date +%s) - started )) s" | tee -a "$out/speed.txt"
