"""Measuring a fill: metrics, the classical baselines, the evaluation run and its report, the CSA ablation.

`metrics` (PSNR, SSIM, L1, L2, TV, colour cast; whole image or hole only, by hole-area bucket),
`perceptual` (shift-tolerant LPIPS), `baselines` (Telea, Navier-Stokes, biharmonic, PatchMatch, FSR:
one signature), `evaluate` (`run_evaluation`: methods x images x masks -> results.csv), `report`
(summary.md, strips.png) and `ablation` (the same photos with CSA's matches as trained, off or random).
Nothing is imported here (OpenCV, scikit-image and LPIPS load only when a metric or baseline needs them).
"""
