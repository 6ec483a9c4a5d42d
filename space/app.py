# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The Hugging Face Space: the `srdiff demo` page with the models shipped in the package (see docs/demo.md)."""

from srdiff_diffusers.demo import build_demo, launch

# Loaded on the first request, so the Space starts in seconds; one upscale at a time on its CPU, others queue.
demo = build_demo()

if __name__ == "__main__":
    launch(demo)
