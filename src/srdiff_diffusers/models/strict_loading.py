# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Loading that fails when a weight file does not match its config, instead of leaving random weights."""

import logging
import re
from typing import List


class StrictLoadingMixin:
    r"""
    Makes `from_pretrained` raise a `ValueError` when the weight file lacks some of the model's weights or holds
    weights the model does not have. diffusers only logs a warning in those cases and keeps randomly initialised
    weights, which for a super-resolution model means plausible-looking noise instead of an error (the most common
    complaint about the original SRDiff code). Put it before `ModelMixin` in the bases.

    `ignore_mismatched_sizes=True` is diffusers' explicit opt-in to partial loading; it disables this check too.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        output_loading_info = kwargs.pop("output_loading_info", False)
        if kwargs.get("ignore_mismatched_sizes", False):
            return super().from_pretrained(
                pretrained_model_name_or_path, output_loading_info=output_loading_info, **kwargs
            )
        subfolder = kwargs.get("subfolder")
        where = f"{pretrained_model_name_or_path}" + (f" (subfolder {subfolder!r})" if subfolder else "")
        held = _HeldRecords()
        try:
            with held:  # diffusers' advice to TRAIN a partly random model must not precede our refusal
                model, info = super().from_pretrained(pretrained_model_name_or_path, output_loading_info=True, **kwargs)
        except ValueError as error:
            # diffusers refuses a weight of the wrong shape itself, without naming the model, and advises the
            # opt-in that would leave it random.
            shape = _MISMATCH.search(str(error))
            if shape is None:
                raise
            key, expected, found = shape.groups()
            problems = [f"weights of the wrong shape: {key} is {found} in the file, {expected} in the config"]
            raise ValueError(_mismatch_message(where, cls.__name__, problems)) from None
        problems: List[str] = []
        for key, what in (
            ("missing_keys", "weights missing from the file"),
            ("unexpected_keys", "weights in the file that the model does not have"),
            ("mismatched_keys", "weights of the wrong shape"),
        ):
            names = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get(key) or [])
            if names:
                shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
                problems.append(f"{what}: {shown}")
        if problems:
            raise ValueError(_mismatch_message(where, cls.__name__, problems))
        held.release()  # the model loaded: whatever diffusers logged still applies
        return (model, info) if output_loading_info else model


class _HeldRecords(logging.Filter):
    """Holds back what diffusers' model loading logs while active; `release` logs it after all."""

    _logger = logging.getLogger("diffusers.models.modeling_utils")

    def __init__(self):
        super().__init__()
        self.records: List[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False

    def __enter__(self):
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc_info):
        self._logger.removeFilter(self)

    def release(self) -> None:
        for record in self.records:
            self._logger.handle(record)


# diffusers' own refusal of a weight whose shape differs from the model's (ModelMixin.from_pretrained).
_MISMATCH = re.compile(r"because (\S+) expected shape (.+?), but got (.+?)\. If you want")


def _mismatch_message(where: str, model_name: str, problems: List[str]) -> str:
    return (
        f"The weights at {where} do not match the {model_name} config next to them ({'; '.join(problems)}). The "
        "folder is incomplete or its config and weights come from different models; re-save or re-convert it. "
        "(Loading anyway would leave randomly initialised weights.)"
    )
