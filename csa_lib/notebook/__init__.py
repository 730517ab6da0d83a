"""What the notebooks show and how they are driven: figures, attention pictures, widgets, exercise answers.

`viz` (sample strips, loss curves, inpainting strips), `attention` (pictures of one CSA record:
feature masks, score maps, the chain), `compared_layers` (contextual attention and the Shift-Net copy,
for the walkthrough), `architecture` (the network drawn from its own modules), `widgets` (`MaskPainter`,
`InpaintApp`, with their front-end in `static/`) and `teaching` (folded exercise answers).
Nothing is imported here, so `import csa_lib.notebook.viz` does not load anywidget.
"""
