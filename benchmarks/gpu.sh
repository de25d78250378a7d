#!/usr/bin/env bash
# The GPU check of issue 22, on a machine with an NVIDIA GPU and no internet, in under eight minutes:
# images/s of the paper protocol's ResNet-50, ConvNeXt-B and Swin-B training steps (bf16, channels-last, paper_cls
# augmentation, loader wait as a share of the step) and the colab profile's section times, on SYNTHETIC images of the
# real shapes. Writes medbench_core/data/gpu_throughput.json (read by `medbench sweep --plan`) and prints the tables
# for benchmarks/README.md. Extra arguments go to benchmarks/gpu_check.py (e.g. --steps 10).
#   benchmarks/gpu.sh                       # from the checkout, with .venv installed (make install)
#   PYTHON=python3 benchmarks/gpu.sh        # with another interpreter that has medbench's requirements
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch: this check needs one (benchmarks/gpu_check.py --device cpu runs it tiny on a CPU)')"
exec timeout 470 "$PYTHON" benchmarks/gpu_check.py --device cuda "$@"
