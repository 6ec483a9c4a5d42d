# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Running a command over many files in several processes (`accelerate launch`, on CPUs, GPUs or several machines),
shared by `srdiff upscale` and `srdiff evaluate`: the process state, and the JSONL manifest of what was done.
"""

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Iterator, List, Union

from ..io import atomic_write


class SingleProcess:
    """The one process of a run without accelerate installed (`accelerate launch` needs it, so none is running)."""

    num_processes, process_index, is_main_process = 1, 0, True

    def wait_for_everyone(self) -> None:
        pass

    @contextlib.contextmanager
    def split_between_processes(self, inputs: list) -> Iterator[list]:
        yield inputs


def process_state(cpu: bool):
    """
    accelerate's `PartialState` (one process without `accelerate launch`), or [`SingleProcess`] without accelerate.
    `cpu`: the run is on the CPU, where several processes meet over gloo (`PartialState` does not read
    `ACCELERATE_USE_CPU` itself, only `Accelerator` does).
    """
    try:
        from accelerate import PartialState
    except ImportError:
        return SingleProcess()
    return PartialState(cpu=cpu)


def remove_stale_temporaries(outputs: List[Path]) -> int:
    """
    Removes the temporary files a killed run left next to these outputs (`io.atomic_write` names them
    `.<name>.tmp-<8 hex digits>`); no other file is touched. Returns how many were removed.
    """
    removed = 0
    for output in outputs:
        pattern = re.compile(rf"\.{re.escape(output.name)}\.tmp-[0-9a-f]{{8}}")
        if output.parent.is_dir():
            for candidate in output.parent.glob(f".{output.name}.tmp-*"):
                if pattern.fullmatch(candidate.name) and candidate.is_file():
                    candidate.unlink()
                    removed += 1
    return removed


class Manifest:
    """
    A JSONL record of finished outputs, one line each. Every process appends to its own part file next to it
    (`.<name>.part-<process>`: no two writers share a file, which also holds on network file systems), flushed and
    synced line by line; the main process merges the parts into the manifest, whose every write is atomic, so a
    killed run leaves a valid manifest and at most one cut line in a part, which the next merge drops.

    Args:
        path (`str` or `os.PathLike`): The manifest file; lines already in it are kept as they are.
        process_index (`int`): This process's index among all processes of the run.
    """

    def __init__(self, path: Union[str, os.PathLike], process_index: int):
        self.path = Path(path)
        self.part = self.path.with_name(f".{self.path.name}.part-{process_index}")

    def parts(self) -> List[Path]:
        pattern = re.compile(rf"\.{re.escape(self.path.name)}\.part-\d+")
        folder = self.path.parent
        return sorted(p for p in folder.glob(f".{self.path.name}.part-*") if pattern.fullmatch(p.name))

    def append(self, record: dict) -> None:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        with open(self.part, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def merge(self) -> int:
        """Appends the parts' complete lines to the manifest (main process, when no other writes); returns how many."""
        parts = self.parts()
        if not parts:
            return 0
        lines = []
        for part in parts:
            for line in part.read_text(encoding="utf-8").splitlines(keepends=True):
                try:
                    complete = line.endswith("\n") and isinstance(json.loads(line), dict)
                except ValueError:
                    complete = False
                if complete:  # a line cut by a kill is dropped, not copied
                    lines.append(line)
        existing = self.path.read_text(encoding="utf-8") if self.path.is_file() else ""
        if existing and not existing.endswith("\n"):
            existing += "\n"
        atomic_write(self.path, existing + "".join(lines))
        for part in parts:
            part.unlink()
        return len(lines)

    def records(self) -> List[dict]:
        """The manifest's valid records (after a merge)."""
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records
