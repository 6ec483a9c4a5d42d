# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""SRDiff sampling with onnxruntime: the graphs of `srdiff export-onnx` and a diffusers scheduler."""

import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from diffusers import schedulers as diffusers_schedulers
from diffusers.configuration_utils import FrozenDict
from diffusers.models.unets.unet_2d import UNet2DOutput

from ..models.rrdb_encoder import RRDBEncoderOutput
from .pipeline_srdiff import SRDiffPipeline
from .schedulers import check_prediction_type

# The folder `srdiff_diffusers.onnx_export.export_onnx` writes (docs/onnx.md).
ONNX_CONFIG_NAME = "srdiff_onnx.json"
ONNX_FORMAT_VERSION = 1
GRAPH_FILES = {
    "encoder": "encoder.onnx",
    "condition_projection": "condition_projection.onnx",
    "unet": "unet.onnx",
    "upscaler": "upscaler.onnx",
}
# The precisions an export can have (`export_onnx(dtype=...)`), as torch and numpy dtypes.
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}
_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16}


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            "The ONNX backend needs onnxruntime: `pip install srdiff-diffusers[onnx]` (or `pip install onnxruntime`)."
        ) from None
    return onnxruntime


def read_onnx_config(folder: Union[str, os.PathLike]) -> dict:
    """
    The `srdiff_onnx.json` of an exported folder, after checking that the folder and the graphs it names exist.

    Raises:
        `FileNotFoundError`: the folder, its JSON or a graph is missing.
        `ValueError`: the JSON is not valid or not of an export this version reads.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder; make one with `srdiff export-onnx MODEL -o {folder}`.")
    config_file = folder / ONNX_CONFIG_NAME
    if not config_file.is_file():
        if (folder / "model_index.json").is_file():  # the torch folder itself: export it next to it
            how = f"an SRDiffPipeline folder: export it first, `srdiff export-onnx {folder} -o {folder}-onnx`"
        else:
            how = f"make one with `srdiff export-onnx MODEL -o {folder}`"
        raise FileNotFoundError(f"{folder} has no {ONNX_CONFIG_NAME}, so it is not an ONNX export of SRDiff; {how}.")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_file} is not valid JSON ({error}); export the model again.") from None
    if not isinstance(config, dict) or config.get("format_version") != ONNX_FORMAT_VERSION:
        version = config.get("format_version") if isinstance(config, dict) else None
        raise ValueError(
            f"{config_file} is of ONNX export format {version!r}; this srdiff-diffusers reads format "
            f"{ONNX_FORMAT_VERSION}: export the model again with this version."
        )
    for name in ("encoder", "condition_projection", "unet"):
        if not (folder / GRAPH_FILES[name]).is_file():
            raise FileNotFoundError(
                f"{folder / GRAPH_FILES[name]} is missing: the ONNX export is incomplete; export the model again."
            )
    return config


def passive_session_options(threads: Optional[int] = None):
    """
    onnxruntime session options whose idle intra-op threads wait passively, as torch's do with
    `OMP_WAIT_POLICY=PASSIVE`. Spinning threads cost 1.2-1.6x per U-Net step with two threads on a 2-core machine
    shared with another job (docs/onnx.md); `threads` sets `intra_op_num_threads` (default: one per core).
    """
    options = _import_onnxruntime().SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
    return options


class _OnnxModel:
    """An onnxruntime session with the few attributes of a torch model that [`SRDiffPipeline`] reads."""

    def __init__(self, session, config: dict, dtype: str):
        self.session = session
        self.config = FrozenDict(config)
        self.dtype = TORCH_DTYPES[dtype]
        self.device = torch.device("cpu")
        self._numpy_dtype = _NUMPY_DTYPES[dtype]

    def _run(self, outputs: Sequence[str], **feed: np.ndarray):
        return [torch.from_numpy(out) for out in self.session.run(list(outputs), feed)]

    def _input(self, tensor: torch.Tensor) -> np.ndarray:
        array = tensor.detach().to("cpu", torch.float32).numpy().astype(self._numpy_dtype, copy=False)
        return np.ascontiguousarray(array)


class OnnxRRDBEncoder(_OnnxModel):
    """`encoder.onnx` as [`RRDBEncoder`]'s `encode` and `forward` (images in [-1, 1], as the torch model)."""

    @property
    def condition_channels(self) -> int:
        return self.config.condition_channels

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        (condition,) = self._run(["condition"], lr=self._input((lr + 1) / 2))
        return condition

    def __call__(self, lr: torch.Tensor, return_dict: bool = True):
        condition, image01 = self._run(["condition", "rrdb_image"], lr=self._input((lr + 1) / 2))
        sample = image01 * 2 - 1
        return RRDBEncoderOutput(sample=sample, condition=condition) if return_dict else (sample, condition)


class OnnxSRDiffUNet(_OnnxModel):
    """`unet.onnx` and `condition_projection.onnx` as [`SRDiffUNet2DModel`]'s `forward` and `project_condition`."""

    def __init__(self, session, projection_session, config: dict, dtype: str):
        super().__init__(session, config, dtype)
        self.projection_session = projection_session

    @property
    def sample_size_multiple(self) -> int:
        return self.config.sample_size_multiple

    @property
    def min_sample_size(self) -> int:
        return self.config.min_sample_size

    def project_condition(self, condition: torch.Tensor) -> torch.Tensor:
        (projected,) = self.projection_session.run(["projected_condition"], {"condition": self._input(condition)})
        return torch.from_numpy(projected)

    def __call__(self, sample, timestep, encoder_hidden_states=None, return_dict=True, projected_condition=None):
        if projected_condition is None:
            projected_condition = self.project_condition(encoder_hidden_states)
        timesteps = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(sample.shape[0])
        (prediction,) = self._run(
            ["prediction"], sample=self._input(sample), timestep=timesteps.numpy(),
            projected_condition=self._input(projected_condition.expand(sample.shape[0], -1, -1, -1)),
        )  # fmt: skip
        return UNet2DOutput(sample=prediction) if return_dict else (prediction,)


class OnnxSRDiffPipeline(SRDiffPipeline):
    r"""
    [`SRDiffPipeline`] on onnxruntime: the graphs written by [`~onnx_export.export_onnx`] (`srdiff export-onnx`)
    replace the torch encoder and U-Net, and everything else is the torch pipeline's own code: the same
    preprocessing, padding, tiling, schedulers, noise drawing and postprocessing, so that a call gives what
    `SRDiffPipeline` gives for the same arguments and generator, to float rounding. Only the noise predictor and the
    encoder run in onnxruntime; up(LR) and the scheduler's arithmetic stay in torch (on the CPU).

    Load it with [`~OnnxSRDiffPipeline.from_pretrained`] from an exported folder. Any scheduler made from its config
    works, as with the torch pipeline: `pipe.scheduler = pipe.fast_scheduler("dpmsolver++")`.

    Example:

    ```py
    >>> import torch
    >>> from PIL import Image
    >>> from srdiff_diffusers.pipelines.pipeline_srdiff_onnx import OnnxSRDiffPipeline

    >>> pipe = OnnxSRDiffPipeline.from_pretrained("srdiff-onnx")  # from `srdiff export-onnx MODEL -o srdiff-onnx`
    >>> pipe.scheduler = pipe.fast_scheduler("ddim")
    >>> image = pipe(Image.open("photo.png"), num_inference_steps=10, generator=torch.manual_seed(0)).images[0]
    ```
    """

    model_cpu_offload_seq = None

    @staticmethod
    def _check_components(unet, encoder, scheduler) -> None:
        if not isinstance(unet, OnnxSRDiffUNet):
            raise TypeError(f"`unet` must be an OnnxSRDiffUNet, got {type(unet).__name__}.")
        if not isinstance(encoder, OnnxRRDBEncoder):
            raise TypeError(f"`encoder` must be an OnnxRRDBEncoder, got {type(encoder).__name__}.")
        check_prediction_type(scheduler)

    @classmethod
    def from_pretrained(
        cls,
        folder: Union[str, os.PathLike],
        providers: Optional[Sequence] = None,
        sess_options=None,
        **kwargs,
    ) -> "OnnxSRDiffPipeline":
        r"""
        Loads an exported folder (`srdiff export-onnx MODEL -o FOLDER`) with onnxruntime.

        Args:
            folder (`str` or `os.PathLike`): The exported folder (with `srdiff_onnx.json`).
            providers (`Sequence`, *optional*): onnxruntime execution providers; defaults to the CPU provider.
            sess_options (`onnxruntime.SessionOptions`, *optional*): Session options (threads, optimisation).
                Defaults to onnxruntime's, except that idle threads wait passively instead of spinning (see
                `passive_session_options`).

        Raises:
            `FileNotFoundError` / `ValueError`: not an exported folder, or an incomplete one (says which file).
        """
        if kwargs:
            raise TypeError(
                f"Unexpected arguments {sorted(kwargs)}; the ONNX pipeline takes `providers` and `sess_options`."
            )
        ort = _import_onnxruntime()
        config = read_onnx_config(folder)
        folder = Path(folder).expanduser()
        providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        sess_options = passive_session_options() if sess_options is None else sess_options

        def session(name):
            path = folder / GRAPH_FILES[name]
            try:
                return ort.InferenceSession(str(path), sess_options=sess_options, providers=providers)
            except Exception as error:  # onnxruntime raises its own exception types
                raise ValueError(
                    f"onnxruntime cannot load {path} ({' '.join(str(error).split())[:300]}); export the model again"
                    + (" (float16 graphs need a GPU execution provider)" if config.get("dtype") == "float16" else "")
                ) from None

        dtype = config.get("dtype", "float32")
        encoder = OnnxRRDBEncoder(session("encoder"), config, dtype)
        unet = OnnxSRDiffUNet(session("unet"), session("condition_projection"), config, dtype)
        scheduler_class = getattr(diffusers_schedulers, config["scheduler"]["class_name"], None)
        if scheduler_class is None:
            name = config["scheduler"]["class_name"]
            raise ValueError(f"{folder}: unknown scheduler {name!r} in {ONNX_CONFIG_NAME}; export the model again.")
        scheduler = scheduler_class.from_config(config["scheduler"]["config"])
        pipe = cls(
            unet=unet, encoder=encoder, scheduler=scheduler, residual_rescale=config["residual_rescale"],
            lr_upscale_divisor=config["lr_upscale_divisor"],
            default_num_inference_steps=config.get("default_num_inference_steps"),
            default_temperature=config.get("default_temperature"),
        )  # fmt: skip
        pipe.onnx_folder = folder
        return pipe

    def to(self, *args, **kwargs) -> "OnnxSRDiffPipeline":
        """The graphs run where their execution providers put them (`from_pretrained(..., providers=...)`); only
        the CPU is accepted here, for the torch side (scheduler, up(LR))."""
        device = kwargs.get("device", args[0] if args and not isinstance(args[0], torch.dtype) else None)
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(
                "The ONNX pipeline keeps its tensors on the CPU; choose the device of the graphs with "
                "`OnnxSRDiffPipeline.from_pretrained(folder, providers=[...])` (e.g. CUDAExecutionProvider)."
            )
        return self

    def save_pretrained(self, *args, **kwargs):
        raise NotImplementedError(
            "An ONNX pipeline is its exported folder; copy it, or export the torch pipeline again with `export_onnx`."
        )
