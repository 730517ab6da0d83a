#!/usr/bin/env bash
# Every GPU figure of issue 14 in one run (target: under 8 minutes on one H200), from the repository root:
#   bash benchmarks/gpu_figures.sh            (PY=path/to/python to choose the interpreter)
# 1. the `gpu` test tier; 2. the CSA layer forward/backward and kernel launches per call (the chain's
# Triton kernels against its torch loops); 3. training img/s at 256 px, full width, AMP,
# batch 8 / 32 / 64, with peak memory; 4. inference img/s in bf16 at batch 64, with peak memory.
set -uo pipefail
PY=${PY:-python}
export PYTHONPATH=${PYTHONPATH:-$PWD}
T0=$SECONDS
step() { echo; echo "=== $* (t=$((SECONDS - T0)) s)"; }
step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
step "gpu test tier"
timeout 150 "$PY" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
step "CSA layer, B=8, C=512, 32x32 (centre, then irregular holes)"
timeout 60 "$PY" benchmarks/bench_csa_layer.py --device cuda --no-literal --repeats 10 --mask centre
timeout 60 "$PY" benchmarks/bench_csa_layer.py --device cuda --no-literal --repeats 10 --mask irregular
step "CSA layer at batch 64 (the training batch)"
timeout 60 "$PY" benchmarks/bench_csa_layer.py --device cuda --no-literal --repeats 5 --batch 64
for batch in 8 32 64; do
  step "training, 256 px, ngf = ndf = 64, AMP, batch $batch"
  timeout 90 "$PY" benchmarks/bench_train.py --device cuda --batch-size "$batch" --amp --mask-type random \
      --warmup 3 --steps 10
done
step "inference, 256 px, ngf 64, bf16, batch 64"
timeout 60 "$PY" benchmarks/bench_generator.py --device cuda --batch 64 --bf16 --mask-type random --warmup 3 --repeats 10
step "done in $((SECONDS - T0)) s"
