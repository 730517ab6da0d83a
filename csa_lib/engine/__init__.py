"""The plumbing behind the method: how it runs fast, trains resumably and reads other layouts.

`csa_lib.csa_layer` says what CSA computes; here is how it runs and what training and inference need
around it:

- `csa_chain`, the CSA chain (the generate step) as one autograd function with its hand-written
  backward, and `csa_triton`, the same forward and backward as Triton kernels (used on CUDA);
- training: `checkpoint` (atomic files, integrity, retention, fp16 exports), `train_state` (the
  trainer's objects in and out of a checkpoint dict, and the trainer's save/resume), `data_order`
  (the resumable data order and random state), `run_log` (loss rows, log.csv, TensorBoard), `run_lock`
  (one writer per run folder), `divergence` (stopping on an exploding loss), `distributed` (torchrun, DDP);
- inference: `blend` (the Poisson blend of a fill) and `official_layout` (the original code's checkpoints).

Nothing is imported here, so `import csa_lib.engine` stays cheap (Triton in particular is slow to import).
"""
