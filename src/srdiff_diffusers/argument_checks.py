# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Type predicates and small checks of arguments: numpy numbers count as numbers, bools do not (Python counts them as
ints).
"""

import numbers

import torch


def is_int(value) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A Python or numpy real number (integers included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_count(value, name: str) -> None:
    """A positive Python or numpy integer (not a bool, not a float)."""
    if not is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_generator(generator) -> None:
    """`generator` is None, a torch.Generator or a list of them (an int seed, for one, fails deep in diffusers)."""
    generators = generator if isinstance(generator, list) else [generator]
    if generator is not None and not all(isinstance(g, torch.Generator) for g in generators):
        raise TypeError(
            "`generator` must be a torch.Generator (e.g. `torch.Generator().manual_seed(0)` for seed 0) or a list "
            f"of them, got {type(generator).__name__}."
        )
