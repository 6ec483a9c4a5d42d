# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Saved weight files that other users can read, as every other file of a saved model."""

import os
import stat
from pathlib import Path


class ReadableWeightsMixin:
    r"""
    After `save_pretrained`, gives the `.safetensors` files the permissions a plain `open()` would (`0o666` less the
    umask). safetensors 0.8 writes through a temporary file created `0o600` and renames it into place
    (safetensors/safetensors#782), so a model saved by one user, a training job or a Docker build was unreadable by
    everyone else while its `config.json` looked fine. Files whose mode is not exactly `0o600` are left alone.
    Put it before `ModelMixin` in the bases.
    """

    # The keywords are named because `DiffusionPipeline.save_pretrained` passes only those its models' signature names.
    def save_pretrained(self, save_directory, *args, safe_serialization=True, variant=None, max_shard_size="10GB",
                        **kwargs):  # fmt: skip
        result = super().save_pretrained(
            save_directory, *args, safe_serialization=safe_serialization, variant=variant,
            max_shard_size=max_shard_size, **kwargs,
        )  # fmt: skip
        if os.name == "posix" and os.path.isdir(save_directory):
            mask = os.umask(0)  # reading the umask means setting it; put it straight back
            os.umask(mask)
            for path in Path(save_directory).glob("*.safetensors"):
                if stat.S_IMODE(path.stat().st_mode) == 0o600 and 0o666 & ~mask != 0o600:
                    os.chmod(path, 0o666 & ~mask)
        return result
