"""CSA inpainting (Coherent Semantic Attention, Liu et al., ICCV 2019).

The top level is the method in reading order: `config`, `csa_layer`, `model`, `vgg`, `losses`,
`masks`, `data`, `train`, `inference` (with `imageio` and `utils`, which they share). The plumbing
is in subpackages: `engine` (checkpoints, resuming, the chain's backward and kernels, blending, the
original layout), `eval` (metrics, baselines, evaluation), `notebook` (figures, widgets) and `cli`
(the commands, `python -m csa_lib.cli.<name>`). Nothing is imported here.
"""
