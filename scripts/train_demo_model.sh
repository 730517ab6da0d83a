#!/usr/bin/env bash
# Rebuild the shipped demo model: data, training, fp16 export, evaluation against the baselines.
# CPU: about two and a half hours on 2 cores. Run from the repository root after `make setup`.
set -euo pipefail
PY=${PY:-.venv/bin/python}
RUN=${RUN:-runs/demo}

"$PY" scripts/build_demo_data.py --out data/training --size 256 --patches-per-photo 80
# 128 px, ngf 16 (8.3 M generator parameters, 16 MB in fp16); half centre, half irregular masks.
# No ImageNet VGG16 weights can be fetched offline, so the VGG terms are off (--no-use-vgg).
"$PY" -m csa_lib.train --data-root data/training/train --image-size 128 --ngf 16 --ndf 16 --batch-size 8 \
    --mask-type mixed --no-use-vgg --vgg-weights none --niter 12 --niter-decay 12 \
    --checkpoints-dir "$RUN" --save-every 250 --sample-every 500 --log-every 25 --num-workers 1 --seed 0
# Two more rounds from the previous weights (fresh discriminators and Adam states, half the learning rate,
# another seed so other crops, flips and masks): each round lowered the held-out error further.
"$PY" -m csa_lib.train --data-root data/training/train --image-size 128 --ngf 16 --ndf 16 --batch-size 8 \
    --mask-type mixed --no-use-vgg --vgg-weights none --niter 15 --niter-decay 15 --lr 1e-4 \
    --init-generator "$RUN/last.pt" \
    --checkpoints-dir "${RUN}_ft" --save-every 250 --sample-every 1000 --log-every 25 --num-workers 1 --seed 1
"$PY" -m csa_lib.train --data-root data/training/train --image-size 128 --ngf 16 --ndf 16 --batch-size 8 \
    --mask-type mixed --no-use-vgg --vgg-weights none --niter 15 --niter-decay 15 --lr 1e-4 \
    --init-generator "${RUN}_ft/last.pt" \
    --checkpoints-dir "${RUN}_ft2" --save-every 250 --sample-every 1000 --log-every 25 --num-workers 1 --seed 2
"$PY" -c "from csa_lib.checkpoint import export_generator; export_generator('${RUN}_ft2/last.pt', 'data/checkpoints/csa_demo.pt')"
for masks in center irregular; do
  "$PY" -m csa_lib.evaluate --images data/training/eval --masks "$masks" --checkpoint data/checkpoints/csa_demo.pt \
      --methods csa,telea,navier_stokes,biharmonic --out "outputs/eval_$masks" --per-bucket 1
done
