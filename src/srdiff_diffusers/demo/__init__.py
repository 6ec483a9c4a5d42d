# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The web demo (`srdiff demo`, and the Hugging Face Space in `space/`): a Gradio page around `SRDiffPipeline`.
Needs the `demo` extra: `pip install "srdiff-diffusers[demo]"`."""

from .app import DEFAULT_MAX_PIXELS, build_demo, launch, shipped_models

__all__ = ["DEFAULT_MAX_PIXELS", "build_demo", "launch", "shipped_models"]
