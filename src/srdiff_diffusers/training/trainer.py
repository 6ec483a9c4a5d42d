# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""The training loop of both SRDiff stages, on accelerate (one CPU to many GPUs)."""

import json
import logging
import math
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, broadcast, set_seed
from diffusers.training_utils import EMAModel
from diffusers.utils.torch_utils import is_compiled_module
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..image_processor import SRDiffImageProcessor
from ..models.rrdb_encoder import RRDBEncoder
from ..models.unet_srdiff import SRDiffUNet2DModel
from ..pipelines.srdiff_formulas import SRDiffFormulas
from ..pipelines.pipeline_srdiff import SRDiffPipeline, default_scheduler
from ..pipelines.schedulers import noise_schedule, prediction_type
from ..pretrained import resolve_model
from ..runtime import retain_freed_cpu_memory
from ..io import atomic_write
from . import distillation
from . import validation as validation_lib
from .data import SRPatchDataset, StepSampler, attach_lr_images, degradation_config, load_hr_images
from .model_card import push_to_hub, write_model_card


logger = get_logger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
# Subfolders of a checkpoint and of the final model.
SUBFOLDERS = {RRDBEncoder: "encoder", SRDiffUNet2DModel: "unet"}
STAGE_SUBFOLDERS = {
    "rrdb": SUBFOLDERS[RRDBEncoder],
    "diffusion": SUBFOLDERS[SRDiffUNet2DModel],
    "distill": SUBFOLDERS[SRDiffUNet2DModel],
}
EMA_SUBFOLDER = "ema"
# A distill checkpoint also holds the student's scheduler (its prediction type), so that it exports as it samples.
SCHEDULER_SUBFOLDER = "scheduler"
LOSS_LOG = "loss_log.jsonl"


@dataclass
class TrainingResult:
    """What [`train`] returns: the loss of every optimizer step, the validation metrics, where the model went."""

    losses: Dict[int, float] = field(default_factory=dict)
    validation: Dict[int, Dict[str, float]] = field(default_factory=dict)
    output_dir: Optional[str] = None
    global_step: int = 0
    steps_per_second: float = 0.0
    samples_per_second: float = 0.0


def check_args(args) -> None:
    """Raises `ValueError` for inconsistent arguments, before anything is loaded."""
    check_distill_args(args)
    if args.stage == "diffusion" and not args.pretrained_encoder:
        raise ValueError(
            "`--stage diffusion` needs `--pretrained_encoder`: the output folder of a `--stage rrdb` run (or any "
            "RRDBEncoder `save_pretrained` folder). The encoder is frozen in this stage, so it must be trained first."
        )
    if args.pretrained_unet and args.stage != "diffusion":
        raise ValueError("`--pretrained_unet` warm-starts the noise predictor: it goes with `--stage diffusion`.")
    if args.pretrained_unet and not os.path.isdir(args.pretrained_unet):
        raise ValueError(f"`--pretrained_unet` {args.pretrained_unet!r} is not a folder.")
    if args.degradation_config and args.degradation != "realistic":
        raise ValueError("`--degradation_config` sets the ranges of `--degradation realistic`; pass both, or neither.")
    if args.degradation == "realistic" and args.train_lr_data_dir:
        raise ValueError(
            "`--degradation realistic` makes the LR images on the fly; drop `--train_lr_data_dir` (given LR images)."
        )
    if args.pretrained_encoder and not os.path.isdir(args.pretrained_encoder):
        raise ValueError(f"`--pretrained_encoder` {args.pretrained_encoder!r} is not a folder.")
    scale = args.upscale_factor
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"`--upscale_factor` must be a power of two >= 2 (2, 4, 8), got {scale}.")
    # The encoder's dense blocks grow by `num_features // 2` channels, which must not be 0.
    if args.rrdb_num_features < 2:
        raise ValueError(f"`--rrdb_num_features` must be >= 2, got {args.rrdb_num_features}.")
    # Not adapted to fewer blocks: the paper's code takes the same features and fails likewise.
    if args.rrdb_num_blocks < 2:
        raise ValueError(
            f"`--rrdb_num_blocks` must be >= 2, got {args.rrdb_num_blocks}: the noise predictor is conditioned on the "
            "encoder's features 2, 5, 8, ... (the block outputs, then the trunk output), as in the paper's code, and "
            "fewer blocks give none (the paper uses 8)."
        )
    minimum, why = min_resolution(args) if args.stage != "distill" else (args.upscale_factor, "one LR pixel")
    if args.resolution < minimum:
        raise ValueError(f"`--resolution` must be at least {minimum} ({why}), got {args.resolution}.")
    if args.resolution % scale:
        raise ValueError(f"`--resolution` ({args.resolution}) must be a multiple of `--upscale_factor` ({scale}).")
    multiple = 2 ** (len(args.unet_block_out_channels) - 1)
    if args.stage == "diffusion" and args.resolution % multiple:  # distill: checked with the teacher's U-Net
        raise ValueError(
            f"`--resolution` ({args.resolution}) must be a multiple of {multiple} for a U-Net with "
            f"{len(args.unet_block_out_channels)} levels."
        )
    for name in ("train_batch_size", "max_train_steps", "gradient_accumulation_steps", "checkpointing_steps",
                 "lr_decay_steps", "logging_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"`--{name}` must be >= 1, got {getattr(args, name)}.")
    if args.max_train_minutes is not None and not 0 < args.max_train_minutes < math.inf:
        raise ValueError(f"`--max_train_minutes` must be a positive number of minutes, got {args.max_train_minutes}.")
    if args.checkpoints_total_limit is not None and args.checkpoints_total_limit < 1:
        raise ValueError(f"`--checkpoints_total_limit` must be >= 1, got {args.checkpoints_total_limit}.")
    for name in ("residual_rescale", "lr_upscale_divisor"):
        value = getattr(args, name)
        if not 0 < value < math.inf:
            raise ValueError(f"`--{name}` must be a positive number, got {value}.")
    if args.push_to_hub and not args.hub_model_id:
        raise ValueError("`--push_to_hub` needs `--hub_model_id` (e.g. `user/srdiff-x4`).")
    degradation_config(args)  # a bad JSON file is reported now, not after the data is loaded
    check_validation_args(args)


def check_distill_args(args) -> None:
    """The options of `--stage distill`, and that they are not given to another stage."""
    if args.stage != "distill":
        if args.teacher:
            raise ValueError("`--teacher` is the model to distil: it goes with `--stage distill`.")
        return
    if not args.teacher:
        raise ValueError(
            "`--stage distill` needs `--teacher`: a shipped model name (`bicubic`) or a trained pipeline folder."
        )
    if not os.path.isfile(os.path.join(resolve_model(args.teacher), "model_index.json")):
        raise ValueError(
            f"`--teacher` {args.teacher!r} is not a pipeline folder (no model_index.json); pass a shipped model "
            "name (`bicubic`) or the output folder of a `--stage diffusion` run."
        )
    if args.pretrained_encoder or args.pretrained_unet:
        raise ValueError("`--stage distill` takes its encoder and U-Net from `--teacher`; drop `--pretrained_*`.")
    if not 1 <= args.teacher_steps <= 100:
        raise ValueError(f"`--teacher_steps` must be in 1..100 (DDIM steps), got {args.teacher_steps}.")
    if any(not 1 <= steps <= args.teacher_steps for steps in args.student_steps):
        raise ValueError(
            f"`--student_steps` must be step counts in 1..`--teacher_steps` ({args.teacher_steps}), got "
            f"{','.join(map(str, args.student_steps))}."
        )
    for name in ("distill_max_temperature", "distill_gt_weight", "default_temperature"):
        value = getattr(args, name)
        if value is not None and not 0 <= value < math.inf:
            raise ValueError(f"`--{name}` must be a number >= 0, got {value}.")


def load_teacher(args) -> SRDiffPipeline:
    """The teacher of `--stage distill`; the run takes its scale, rescale, divisor and U-Net widths."""
    teacher = SRDiffPipeline.from_pretrained(resolve_model(args.teacher))
    if prediction_type(teacher.scheduler) != "epsilon":
        raise ValueError(f"`--teacher` {args.teacher!r} is already a distilled model; distil its own teacher.")
    # The student's schedulers and the saved pipeline are made from the paper's schedule (`default_scheduler`).
    schedule, paper = noise_schedule(teacher.scheduler), noise_schedule(default_scheduler())
    if schedule.shape != paper.shape or not torch.allclose(schedule, paper):
        raise ValueError(
            f"`--teacher` {args.teacher!r} was trained on another noise schedule than SRDiff's (T = 100, cosine), "
            "which `--stage distill` does not support."
        )
    args.upscale_factor = teacher.upscale_factor
    args.residual_rescale = teacher.config.residual_rescale
    args.lr_upscale_divisor = teacher.config.lr_upscale_divisor
    args.unet_block_out_channels = tuple(teacher.unet.config.block_out_channels)
    if args.default_temperature is None:
        args.default_temperature = teacher.config.get("default_temperature")
    multiple = teacher.unet.sample_size_multiple
    if args.resolution % multiple or args.resolution % args.upscale_factor:
        raise ValueError(
            f"`--resolution` ({args.resolution}) must be a multiple of {math.lcm(multiple, args.upscale_factor)} for "
            "the teacher's U-Net and scale."
        )
    return teacher


def check_validation_args(args) -> None:
    """The validation options, checked before training: a mistake must not stop a run at its first validation."""
    steps = args.validation_steps
    if steps is not None and steps < 0:
        raise ValueError(
            f"`--validation_steps` must be >= 1 (validate every N steps), or 0 for no validation, got {steps}."
        )
    if args.validation_data_dir is not None:
        if not steps:
            # Only validation reads it: accepting it without `--validation_steps` would validate nothing, silently.
            given = "" if steps is None else " (`--validation_steps 0` turns validation off)"
            raise ValueError(
                f"`--validation_data_dir` is only used when validating{given}: pass `--validation_steps N` with N >= 1 "
                "(validate every N steps), or drop `--validation_data_dir`."
            )
        if not os.path.isdir(args.validation_data_dir):
            raise ValueError(f"`--validation_data_dir` {args.validation_data_dir!r} is not a folder.")
    scale, crop = args.upscale_factor, args.validation_crop
    # The crop is rounded down to a multiple of the scale, and its LR (crop / scale) must keep at least one pixel;
    # the pipeline pads anything from one LR pixel up to the U-Net's size.
    if crop < 0 or 0 < crop < scale:
        raise ValueError(
            f"`--validation_crop` must be 0 (whole images) or at least `--upscale_factor` ({scale}: one LR pixel), "
            f"got {crop}."
        )
    if steps and args.num_validation_images < 1:
        raise ValueError(
            f"`--num_validation_images` must be >= 1 with `--validation_steps`, got {args.num_validation_images}."
        )
    if steps and args.stage == "diffusion" and args.validation_inference_steps < 1:
        raise ValueError(
            f"`--validation_inference_steps` must be >= 1 (DDPM steps per validation image), got "
            f"{args.validation_inference_steps}."
        )


def min_resolution(args) -> Tuple[int, str]:
    """The smallest `--resolution` (HR patch) this stage can train on, and why."""
    scale = args.upscale_factor
    if args.stage == "rrdb":
        return scale, f"one LR pixel at `--upscale_factor` {scale}"
    # `SRDiffUNet2DModel.min_sample_size` (2 * multiple: its lowest level pads by one pixel), computed from the
    # options since no model is built yet; the patch must also be a multiple of the scale and of the U-Net's multiple.
    levels = len(args.unet_block_out_channels)
    multiple = 2 ** (levels - 1)
    step = math.lcm(scale, multiple)
    minimum = step * -(-2 * multiple // step)
    why = (
        f"`--unet_block_out_channels` has {levels} levels: the U-Net halves the patch {levels - 1} times and needs "
        "2 px at its lowest level"
    )
    if minimum > 2 * multiple:
        why += f", and the patch must be a multiple of {step}"
    return minimum, why


def load_trained_model(model_cls, path: str, hint: str):
    """Loads a `model_cls` from its own folder, or from the subfolder a training run or a pipeline saves it in."""
    subfolder = SUBFOLDERS[model_cls]
    for candidate in (path, os.path.join(path, subfolder)):
        config = os.path.join(candidate, "config.json")
        if os.path.isfile(config):
            with open(config) as f:
                if json.load(f).get("_class_name") == model_cls.__name__:
                    return model_cls.from_pretrained(candidate)
    raise ValueError(
        f"No {model_cls.__name__} found in {path!r} (looked for config.json there and in its `{subfolder}` "
        f"subfolder); {hint}."
    )


def load_encoder(path: str) -> RRDBEncoder:
    """Loads an RRDBEncoder from its own folder, a training output folder or a pipeline folder."""
    return load_trained_model(RRDBEncoder, path, "pass the output folder of a `--stage rrdb` run")


def load_unet(path: str) -> SRDiffUNet2DModel:
    """Loads an SRDiffUNet2DModel from its own folder or a pipeline folder (its `unet` subfolder)."""
    return load_trained_model(SRDiffUNet2DModel, path, "pass a pipeline folder or a U-Net folder")


def list_checkpoints(output_dir: str) -> List[str]:
    """`checkpoint-N` folders of `output_dir`, oldest first; half-written temporary folders are not listed."""
    if not os.path.isdir(output_dir):
        return []
    found = [(int(m.group(1)), d) for d in os.listdir(output_dir) if (m := CHECKPOINT_PATTERN.match(d))]
    return [os.path.join(output_dir, d) for _, d in sorted(found)]


def unwrap(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """
    The trained model itself: without accelerate's wrappers, and without the compiled one that `accelerate launch
    --dynamo_backend inductor` adds (checkpoints, resuming, validation and the final save need the model), as
    diffusers' training examples unwrap it.
    """
    model = accelerator.unwrap_model(model)
    return model._orig_mod if is_compiled_module(model) else model


def save_checkpoint(accelerator: Accelerator, output_dir: str, step: int, total_limit: Optional[int]) -> str:
    """
    Saves the full training state to `output_dir/checkpoint-{step}` atomically: it is written to a temporary folder
    and renamed once complete, so a run killed while saving leaves the previous checkpoints intact. Then prunes the
    oldest checkpoints down to `total_limit`. Main process only.
    """
    final = os.path.join(output_dir, f"checkpoint-{step}")
    temporary = os.path.join(output_dir, f".tmp-checkpoint-{step}")
    for name in os.listdir(output_dir):  # left by runs killed while saving
        if name.startswith(".tmp-checkpoint-"):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
    accelerator.save_state(temporary)
    with open(os.path.join(temporary, "training_state.json"), "w") as f:
        json.dump({"global_step": step}, f)
    if os.path.isdir(final):  # re-saving the same step after a resume
        shutil.rmtree(final)
    os.replace(temporary, final)
    if total_limit is not None:
        for old in list_checkpoints(output_dir)[:-total_limit]:
            logger.info(f"Removing old checkpoint {old}")
            shutil.rmtree(old)
    return final


def resolve_resume(args) -> Optional[str]:
    """The checkpoint to resume from (`None`: a new run), checked to be one of this stage ([`check_checkpoint`])."""
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint == "latest":
        found = list_checkpoints(args.output_dir)
        if found:
            check_checkpoint(found[-1], args)
        return found[-1] if found else None
    path = args.resume_from_checkpoint
    if not os.path.exists(path):
        raise ValueError(f"`--resume_from_checkpoint` {path!r} not found; pass a checkpoint-N folder or 'latest'.")
    if not os.path.isdir(path) or not CHECKPOINT_PATTERN.match(os.path.basename(os.path.normpath(path))):
        raise ValueError(f"`--resume_from_checkpoint` {path!r} is not a checkpoint-N folder; pass one or 'latest'.")
    check_checkpoint(path, args)
    return path


def _holds_model(folder: str) -> bool:
    """Whether `folder` holds a `save_pretrained` model: its config and its weights."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return False
    return any(name.startswith("diffusion_pytorch_model") for name in os.listdir(folder))


def check_checkpoint(path: str, args) -> None:
    """
    Raises `ValueError` unless the checkpoint `path` holds what this run's stage saves (see `save_model_hook`), before
    anything is loaded: diffusers' own error would only say that some `config.json` is missing.
    """
    if args.resume_from_checkpoint == "latest":
        where = f"The newest checkpoint in `--output_dir` ({path!r}, chosen by `--resume_from_checkpoint latest`)"
    else:
        where = f"`--resume_from_checkpoint` {path!r}"
    own = STAGE_SUBFOLDERS[args.stage]
    if not _holds_model(os.path.join(path, own)):
        for stage, subfolder in STAGE_SUBFOLDERS.items():
            if stage != args.stage and _holds_model(os.path.join(path, subfolder)):
                raise ValueError(
                    f"{where} is a checkpoint of a `--stage {stage}` run (it holds `{subfolder}/`, not `{own}/`), "
                    f"and this run is `--stage {args.stage}`: resume from a checkpoint of a `--stage {args.stage}` "
                    "run, or use another `--output_dir`."
                )
        raise ValueError(
            f"{where} is an incomplete checkpoint: it lacks `{own}/` (config.json and weights), which every "
            f"checkpoint of a `--stage {args.stage}` run holds. Resume from another checkpoint-N folder, or delete "
            "this one."
        )
    if args.use_ema and not _holds_model(os.path.join(path, EMA_SUBFOLDER)):
        raise ValueError(
            f"{where} has no EMA weights (`{EMA_SUBFOLDER}/`): its run was trained without `--use_ema`. Resume "
            "without `--use_ema`, or start a new run with it."
        )


def truncate_loss_log(path: str, last_step: int) -> None:
    """Drops the steps after `last_step` from the loss log: a resumed run trains them again and logs them anew."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    # a run killed mid-write can leave a partial last line; it is after the checkpoint, so it goes too
    kept = [line for line in lines if line.endswith("\n") and json.loads(line)["step"] <= last_step]
    if len(kept) != len(lines):
        atomic_write(path, "".join(kept))


def read_loss_log(run_dir: str, last_step: int) -> Dict[int, float]:
    """The losses of a run's steps up to `last_step`, from its loss log (`LOSS_LOG` in its `--output_dir`)."""
    losses = {}
    log = os.path.join(run_dir, LOSS_LOG)
    with open(log, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                step, loss = record["step"], record["loss"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{log}, line {number}, is not a loss record: {line.strip()[:80]!r}.") from None
            if step <= last_step:
                losses[step] = loss
    return losses


def config_differences(saved, built) -> str:
    """The architecture settings (config keys without a leading `_`) in which two model configs differ, as text."""

    def plain(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    keys = sorted(k for k in {**saved, **built} if not k.startswith("_"))
    return ", ".join(
        f"{k}={plain(saved.get(k))!r} in the checkpoint, {plain(built.get(k))!r} here"
        for k in keys
        if plain(saved.get(k)) != plain(built.get(k))
    )


def step_generator(seed: int, micro_batch: int, process_index: int) -> torch.Generator:
    """Noise and timesteps of one micro-batch depend only on (seed, micro-batch, process): resume is exact."""
    state = np.random.SeedSequence([seed, micro_batch, process_index, 2]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def out_of_time(accelerator: Accelerator, deadline: float) -> bool:
    """Whether the main process's clock is past `deadline`, told to every process so that all stop at one step."""
    flag = torch.tensor([float(time.time() >= deadline)], device=accelerator.device)
    return bool(broadcast(flag, from_process=0).item())


def upscale_lr(lr: torch.Tensor, scale: int, lr_upscale_divisor: float = 255.0) -> torch.Tensor:
    """up(LR) of a training batch's LR in [-1, 1], returned in [-1, 1] (`SRDiffFormulas.upscale_lr`)."""
    formulas = SRDiffFormulas(scale, lr_upscale_divisor=lr_upscale_divisor)
    return formulas.upscale_lr(SRDiffImageProcessor.denormalize(lr))


def diffusion_target(hr: torch.Tensor, lr: torch.Tensor, args) -> torch.Tensor:
    """x0 of a training batch (HR and LR in [-1, 1]) with the run's rescale and divisor, as the pipeline samples it."""
    hr01, lr01 = SRDiffImageProcessor.denormalize(hr), SRDiffImageProcessor.denormalize(lr)
    formulas = SRDiffFormulas(args.upscale_factor, args.residual_rescale, args.lr_upscale_divisor)
    return formulas.residual_from_image(hr01, lr01)


def diffusion_loss(unet, encoder, noise_scheduler, hr, lr, generator, args) -> torch.Tensor:
    """Algorithm 1: L1 between the predicted and the true noise of the diffused, rescaled HR residual."""
    x0 = diffusion_target(hr, lr, args)
    with torch.no_grad():
        condition = encoder.encode(lr)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    num_steps = noise_scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, num_steps, (x0.shape[0],), generator=generator).to(x0.device)
    noisy = noise_scheduler.add_noise(x0, noise, timesteps)
    prediction = unet(noisy, timesteps, condition).sample
    return F.l1_loss(prediction.float(), noise.float())


def rrdb_loss(encoder, hr, lr) -> torch.Tensor:
    """L1 pre-training of the encoder's SR head."""
    # A tuple, not RRDBEncoderOutput: accelerate's fp32 output wrapper (mixed precision) rebuilds output
    # dataclasses from a dict, which only works for one-field outputs.
    sample = encoder(lr, return_dict=False)[0]
    return F.l1_loss(sample.float(), hr.float())


def train(args) -> TrainingResult:
    r"""
    Trains one SRDiff stage as described by `args` (`srdiff_diffusers.commands.train.parse_args`) and returns the
    losses and validation metrics. Run it under `accelerate launch` for several processes.
    """
    check_args(args)
    check_output_dir(args)
    # Before anything is created or loaded, so that a wrong checkpoint is reported at once.
    resume_path = resolve_resume(args)

    logging_dir = os.path.join(args.output_dir, "logs")
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=logging_dir),
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    if accelerator.device.type == "cpu":
        retain_freed_cpu_memory()  # every step frees and re-allocates the same activations (runtime.py)
    file_handler = None
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
        file_handler = logging.FileHandler(os.path.join(args.output_dir, "train.log"))
        file_handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(name)s - %(message)s"))
        logging.getLogger().addHandler(file_handler)
    try:
        return _train(args, accelerator, resume_path)
    finally:
        if file_handler is not None:
            logging.getLogger().removeHandler(file_handler)
            file_handler.close()


def _train(args, accelerator: Accelerator, resume_path: Optional[str]) -> TrainingResult:
    logger.info(accelerator.state, main_process_only=False)
    set_seed(args.seed)

    # 1. models: the trained one, and for the diffusion stage the frozen encoder
    scale = args.upscale_factor
    if args.stage == "rrdb":
        if args.pretrained_encoder:
            model = load_encoder(args.pretrained_encoder)
            if model.config.upscale_factor != scale:
                raise ValueError(f"The encoder upscales x{model.config.upscale_factor}, not x{scale}.")
        else:
            model = RRDBEncoder(
                num_features=args.rrdb_num_features, num_blocks=args.rrdb_num_blocks, upscale_factor=scale
            )
        encoder = None
    elif args.stage == "distill":
        teacher_pipeline = load_teacher(args)
        encoder, teacher = teacher_pipeline.encoder, teacher_pipeline.unet
        encoder.requires_grad_(False).eval()
        teacher.requires_grad_(False).eval()
        model = SRDiffUNet2DModel.from_config(teacher.config)
        model.load_state_dict(teacher.state_dict())  # the student starts from the teacher's features
        # ...but not its output layer, which predicts noise: zeroed, the student starts at x0 = 0 (bicubic) instead of
        # at noise whose large error would first wipe the features out (measured: it collapsed to x0 ~ 0 then).
        torch.nn.init.zeros_(model.conv_out.weight)
        torch.nn.init.zeros_(model.conv_out.bias)
    else:
        encoder = load_encoder(args.pretrained_encoder)
        if encoder.config.upscale_factor != scale:
            raise ValueError(
                f"The pretrained encoder upscales x{encoder.config.upscale_factor} but `--upscale_factor` is {scale}."
            )
        encoder.requires_grad_(False).eval()
        model = SRDiffUNet2DModel(
            block_out_channels=tuple(args.unet_block_out_channels),
            condition_channels=encoder.condition_channels,
            upscale_factor=scale,
        )
        if args.pretrained_unet and resume_path is None:
            warm = load_unet(args.pretrained_unet)
            differences = config_differences(warm.config, model.config)
            if differences:
                raise ValueError(
                    f"`--pretrained_unet` {args.pretrained_unet!r} holds another U-Net than this run builds "
                    f"({differences}): pass the same `--unet_block_out_channels` and encoder."
                )
            model.load_state_dict(warm.state_dict())
    model_cls = type(model)
    subfolder = SUBFOLDERS[model_cls]
    model.train()

    ema = None
    if args.use_ema:
        ema = EMAModel(model.parameters(), decay=args.ema_decay, model_cls=model_cls, model_config=model.config)

    # 2. checkpoint hooks: each model is saved with `save_pretrained`, so a checkpoint is also a usable model folder
    def save_model_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            for saved in models:
                unwrap(accelerator, saved).save_pretrained(os.path.join(output_dir, subfolder))
                weights.pop()  # saved above; accelerate must not save it again
            if ema is not None:
                ema.save_pretrained(os.path.join(output_dir, EMA_SUBFOLDER))
            if args.stage == "distill":
                student_scheduler.save_pretrained(os.path.join(output_dir, SCHEDULER_SUBFOLDER))

    def load_model_hook(models, input_dir):
        while models:
            target = unwrap(accelerator, models.pop())
            loaded = model_cls.from_pretrained(input_dir, subfolder=subfolder)
            differences = config_differences(loaded.config, target.config)
            if differences:  # else `load_state_dict` fails with a list of mismatched tensor shapes
                raise ValueError(
                    f"The checkpoint {input_dir!r} holds another {model_cls.__name__} than this run builds "
                    f"({differences}): resume with the model options of the run that saved it."
                )
            target.load_state_dict(loaded.state_dict())
        if ema is not None:
            with warnings.catch_warnings():  # raised inside diffusers' own EMAModel.from_pretrained
                warnings.filterwarnings("ignore", "It is deprecated to pass a pretrained", FutureWarning)
                loaded_ema = EMAModel.from_pretrained(os.path.join(input_dir, EMA_SUBFOLDER), model_cls)
            ema.load_state_dict(loaded_ema.state_dict())
            ema.to(accelerator.device)

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)

    # 3. optimizer and schedule: Adam, halved every `lr_decay_steps` optimizer steps
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
    )
    # Not passed to `prepare`: accelerate would step it once per process per step, decaying too early with several
    # processes. It is stepped once per optimizer step below and registered so that checkpoints keep it.
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_decay_steps, gamma=args.lr_decay_gamma)

    # 4. data
    with accelerator.main_process_first():
        records = load_hr_images(
            args.train_data_dir, args.dataset_name, args.dataset_config_name, args.image_column, args.cache_dir,
            args.max_train_samples,
        )
    if args.train_lr_data_dir:
        records = attach_lr_images(records, args.train_lr_data_dir)
    validation_records = None
    if args.validation_steps:
        records, validation_records = validation_lib.split_validation(records, args)
    dataset = SRPatchDataset(
        records, args.resolution, scale, seed=args.seed, augment=not args.no_augment, preset=args.preset,
        degradation=degradation_config(args),
    )
    logger.info(f"{len(dataset)} training images ({len(dataset.skipped)} skipped)")

    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(lr_scheduler)
    if ema is not None:
        ema.to(accelerator.device)
    if encoder is not None:
        encoder.to(accelerator.device)
    noise_scheduler = default_scheduler()
    if args.stage == "distill":
        teacher.to(accelerator.device)
        teacher_scheduler = distillation.ddim_scheduler(noise_scheduler.config)
        teacher_scheduler.set_timesteps(args.teacher_steps)
        student_scheduler = distillation.ddim_scheduler(noise_scheduler.config, args.prediction_type)
        timestep_rows = distillation.student_timesteps(noise_scheduler.config, args.student_steps)

    if accelerator.is_main_process:
        tracker_config = {k: (",".join(map(str, v)) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
        tracker_config = {k: v for k, v in tracker_config.items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(args.tracker_project_name, config=tracker_config)

    # 5. resume
    global_step = 0
    if resume_path is None and args.resume_from_checkpoint == "latest":
        logger.info(f"No checkpoint in {args.output_dir}; starting a new run.")
    if resume_path is not None:
        logger.info(f"Resuming from {resume_path}")
        accelerator.load_state(resume_path)
        global_step = int(CHECKPOINT_PATTERN.match(os.path.basename(os.path.normpath(resume_path))).group(1))
        if accelerator.is_main_process:
            truncate_loss_log(os.path.join(args.output_dir, LOSS_LOG), global_step)

    accumulation = args.gradient_accumulation_steps
    sampler = StepSampler(
        args.train_batch_size, global_step * accumulation, accelerator.process_index, accelerator.num_processes
    )
    dataloader = DataLoader(
        dataset, batch_size=args.train_batch_size, sampler=sampler, num_workers=args.dataloader_num_workers,
        drop_last=True,
    )

    total_batch = args.train_batch_size * accelerator.num_processes * accumulation
    logger.info("***** Running training *****")
    logger.info(f"  Stage = {args.stage}, trained parameters = {sum(p.numel() for p in model.parameters()):,}")
    logger.info(f"  Batch per device = {args.train_batch_size}, total batch = {total_batch}")
    logger.info(f"  Steps = {global_step} -> {args.max_train_steps}")

    # 6. loop
    result = TrainingResult(output_dir=args.output_dir, global_step=global_step)
    loss_log = os.path.join(args.output_dir, LOSS_LOG)
    progress = tqdm(
        total=args.max_train_steps, initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    window, step_losses, started = [], [], time.time()
    first_step = global_step
    deadline = started + 60 * args.max_train_minutes if args.max_train_minutes else math.inf
    micro_batch = global_step * accumulation
    for batch in dataloader:
        if global_step >= args.max_train_steps:
            break
        if deadline < math.inf and accelerator.sync_gradients and out_of_time(accelerator, deadline):
            logger.info(f"`--max_train_minutes` ({args.max_train_minutes}) reached at step {global_step}.")
            if accelerator.is_main_process and global_step % args.checkpointing_steps:
                path = save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
                logger.info(f"Saved state to {path}")
            break
        hr, lr = batch["hr"].to(accelerator.device), batch["lr"].to(accelerator.device)
        with accelerator.accumulate(model):
            with accelerator.autocast():
                generator = step_generator(args.seed, micro_batch, accelerator.process_index)
                if args.stage == "rrdb":
                    loss = rrdb_loss(model, hr, lr)
                elif args.stage == "distill":
                    loss = distillation.distillation_loss(
                        model, teacher, encoder, teacher_scheduler, student_scheduler, diffusion_target(hr, lr, args),
                        lr, generator, timestep_rows, args,
                    )  # fmt: skip
                else:
                    loss = diffusion_loss(model, encoder, noise_scheduler, hr, lr, generator, args)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        micro_batch += 1
        step_losses.append(accelerator.gather(loss.detach()[None]).mean().item())
        if not accelerator.sync_gradients:
            continue

        # one optimizer step done
        lr_scheduler.step()
        if ema is not None:
            ema.step(model.parameters())
        global_step += 1
        step_loss = float(np.mean(step_losses))
        step_losses = []
        result.losses[global_step] = step_loss
        window.append(step_loss)
        progress.update(1)
        progress.set_postfix(loss=f"{step_loss:.4f}", lr=lr_scheduler.get_last_lr()[0])
        logs = {"loss": step_loss, "lr": lr_scheduler.get_last_lr()[0]}
        if ema is not None:
            logs["ema_decay"] = ema.cur_decay_value
        accelerator.log(logs, step=global_step)
        if accelerator.is_main_process:
            with open(loss_log, "a") as f:
                f.write(json.dumps({"step": global_step, "loss": step_loss}) + "\n")
        if global_step % args.logging_steps == 0 or global_step == args.max_train_steps:
            elapsed = time.time() - started
            logger.info(
                f"step {global_step}/{args.max_train_steps}: mean loss {np.mean(window):.5f} over the last "
                f"{len(window)} steps, lr {lr_scheduler.get_last_lr()[0]:.2e}, {elapsed:.0f} s elapsed"
            )
            window = []

        if global_step % args.checkpointing_steps == 0 and accelerator.is_main_process:
            path = save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
            logger.info(f"Saved state to {path}")

        if args.validation_steps and (global_step % args.validation_steps == 0 or global_step == args.max_train_steps):
            if accelerator.is_main_process:
                metrics = validation_lib.run_validation(
                    args, accelerator, unwrap(accelerator, model), encoder, ema, validation_records, global_step
                )
                result.validation[global_step] = metrics
            accelerator.wait_for_everyone()
    progress.close()
    result.global_step = global_step
    seconds = time.time() - started
    if global_step > first_step:
        result.steps_per_second = (global_step - first_step) / seconds
        result.samples_per_second = result.steps_per_second * total_batch
        logger.info(
            f"throughput: {global_step - first_step} steps in {seconds:.1f} s, {result.steps_per_second:.2f} steps/s, "
            f"{result.samples_per_second:.1f} samples/s (batch {total_batch}, {accelerator.device}, "
            f"mixed precision {accelerator.mixed_precision})"
        )

    # 7. final model
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        trained = unwrap(accelerator, model)
        if ema is not None:
            ema.copy_to(trained.parameters())
        save_final(args, trained, encoder, result)
    accelerator.end_training()
    return result


def save_final(args, trained, encoder, result: TrainingResult) -> None:
    """`save_pretrained` of the encoder (stage rrdb) or of the full pipeline (stage diffusion), plus the model card."""
    if args.stage == "rrdb":
        trained.save_pretrained(args.output_dir)
    else:
        validation_lib.pipeline_of_run(args, trained, encoder).save_pretrained(args.output_dir)
    try:
        write_model_card(args, result)
    except FileNotFoundError as error:  # an install without the template must not lose hours of training
        logger.warning(f"No model card written: {error}")
    logger.info(f"Saved the final model to {args.output_dir}")
    if args.push_to_hub:
        push_to_hub(args)


def check_output_dir(args) -> None:
    """Refuses to start a run whose final save would replace a model already in `--output_dir`."""
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise ValueError(
            f"`--output_dir` {args.output_dir!r} is a file, not a folder: choose a folder (it is created if missing)."
        )
    final = "config.json" if args.stage == "rrdb" else "model_index.json"
    path = os.path.join(args.output_dir, final)
    if os.path.exists(path) and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        raise ValueError(
            f"{path} already exists: a final model is already in `--output_dir`; pass `--overwrite_output_dir` to "
            "replace it, or choose another folder."
        )
