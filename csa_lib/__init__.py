"""CSA inpainting library."""
