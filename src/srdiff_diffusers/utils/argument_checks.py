# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Type predicates for argument checks: numpy numbers count as numbers, bools do not (Python counts them as ints).
`image_processing` spells them out instead: this package imports it, so it cannot import from here.
"""

import numbers


def is_int(value) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A Python or numpy real number (integers included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
