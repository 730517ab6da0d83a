"""The plumbing behind the method (`csa_lib.csa_layer` says what CSA computes; this says how it runs fast).

Here: `csa_chain`, the CSA chain (the generate step) as one autograd function with its
hand-written backward, and `csa_triton`, the same forward and backward as Triton kernels (used on
CUDA). Nothing is imported here, so `import csa_lib.engine` stays cheap (Triton in particular is slow to import).
"""
