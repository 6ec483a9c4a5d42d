# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff train` (the paper's two stages and distillation): its arguments, shared with the accelerate entry
`examples/train_srdiff.py`, and that script's command line ([`cli_main`])."""

import argparse
from typing import List, Optional, Tuple

from . import command_line


def _int_tuple(text: str) -> Tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as '32,64,64,128', got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


DESCRIPTION = (
    "Train SRDiff (Li et al., 2021): `--stage rrdb` pre-trains the RRDB encoder's SR head with L1, then `--stage "
    "diffusion` trains the conditional noise predictor with the encoder frozen."
)


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    register(parser)
    return parser


def register(parser: argparse.ArgumentParser) -> None:
    """Adds the training arguments to `parser` (`srdiff train` and the training script share them)."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter  # the help shows every default
    g = parser.add_argument_group("stage and models")
    g.add_argument(
        "--stage", choices=("rrdb", "diffusion", "distill"), required=True,
        help="`rrdb` and `diffusion`: the paper's two stages; `distill`: a few-step student of `--teacher`.",
    )
    g.add_argument(
        "--pretrained_encoder",
        type=str,
        default=None,
        help="Stage `diffusion` (required): a folder with a trained RRDBEncoder (`save_pretrained` output, a stage-"
        "rrdb output folder, or a pipeline folder with an `encoder` subfolder). Stage `rrdb`: optional warm start.",
    )
    g.add_argument(
        "--pretrained_unet", type=str, default=None,
        help="Stage `diffusion`, optional warm start: a pipeline folder (or a U-Net folder) whose U-Net of the same "
        "configuration initialises the trained one (e.g. the bicubic model, to train the realistic one faster).",
    )
    g.add_argument("--upscale_factor", type=int, default=4, help="SR scale.")

    g = parser.add_argument_group("distillation (--stage distill)")
    g.add_argument(
        "--teacher", type=str, default=None,
        help="Stage `distill` (required): the teacher pipeline, a shipped model name (`bicubic`) or a folder. Its "
        "encoder (frozen), U-Net (the student's start), scale, rescale and divisor are used; the model options "
        "below are ignored.",
    )
    g.add_argument("--teacher_steps", type=int, default=10, help="DDIM steps of the teacher's trajectory.")
    g.add_argument("--student_steps", type=_int_tuple, default=(1, 2, 4),
                   help="DDIM step counts the student is trained for; the first is the saved default.")
    g.add_argument("--prediction_type", choices=("sample", "v_prediction"), default="sample",
                   help="What the student predicts: x0 (`sample`) or v; epsilon is ill-conditioned at the first step.")
    g.add_argument("--distill_max_temperature", type=float, default=1.0,
                   help="Temperatures (scale of x_T) are drawn uniformly in [0, this].")
    g.add_argument("--distill_gt_weight", type=float, default=0.0,
                   help="Weight of SinSR's ground-truth term (MSE of the student's x0 to the true residual).")
    g.add_argument("--default_temperature", type=float, default=None,
                   help="Stage `distill`: the temperature saved as the student's default (unset: the teacher's).")
    g.add_argument("--rrdb_num_features", type=int, default=32, help="RRDB trunk width (paper: 32).")
    g.add_argument("--rrdb_num_blocks", type=int, default=8, help="Number of RRDB blocks (paper: 8).")
    g.add_argument(
        "--unet_block_out_channels", type=_int_tuple, default=(64, 128, 192, 256),
        help="U-Net widths, comma-separated (paper: 64,128,192,256).",
    )
    g.add_argument("--residual_rescale", type=float, default=2.0,
                   help="The diffused signal is (HR - up(LR)) * this (paper: 2); saved in the pipeline's config.")
    g.add_argument("--lr_upscale_divisor", type=float, default=255.0,
                   help="up(LR) from uint8 / this (255 exact; the authors' data code used 256); saved likewise.")

    g = parser.add_argument_group("data")
    g.add_argument("--train_data_dir", type=str, default=None, help="A folder of HR images (loaded as `imagefolder`).")
    g.add_argument(
        "--train_lr_data_dir", type=str, default=None,
        help="Optional: a folder of LR images at the same relative paths (sub-folders and file names) as the HR ones "
        "(e.g. LR_bicubic/X4), used instead of LR made on the fly; each must be exactly HR size / scale.",
    )
    g.add_argument("--dataset_name", type=str, default=None,
                   help="A `datasets` dataset name or path instead (also a folder written by `save_to_disk`).")
    g.add_argument("--dataset_config_name", type=str, default=None, help="The dataset's configuration name.")
    g.add_argument("--image_column", type=str, default="image", help="Column holding the HR images.")
    g.add_argument("--cache_dir", type=str, default=None, help="Cache folder for `datasets`.")
    g.add_argument("--resolution", type=int, default=160, help="HR patch size (paper: 160).")
    g.add_argument(
        "--preset", choices=("none", "faces"), default="none",
        help="`faces`: center crop 178 and resize to 160 before cropping, as the paper's CelebA setup.",
    )
    g.add_argument(
        "--degradation", choices=("bicubic", "realistic"), default="bicubic",
        help="How LR patches are made: `bicubic` (MATLAB bicubic, the paper's and the benchmarks' setting) or "
        "`realistic` (Real-ESRGAN's second-order blur, resize, noise and JPEG, drawn anew for every patch).",
    )
    g.add_argument(
        "--degradation_config", type=str, default=None,
        help="With `--degradation realistic`: a JSON file overriding the degradation ranges (see "
        "srdiff_diffusers.degradations.DegradationConfig; default: Real-ESRGAN's).",
    )
    g.add_argument("--no_augment", action="store_true", help="Disable random flips and 90-degree rotations.")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="Data loading subprocesses.")
    g.add_argument("--max_train_samples", type=int, default=None, help="Use only the first N images (debugging).")

    g = parser.add_argument_group("optimisation")
    g.add_argument("--train_batch_size", type=int, default=16, help="Batch size per device.")
    g.add_argument("--max_train_steps", type=int, default=300000, help="Optimizer steps in total.")
    g.add_argument("--max_train_minutes", type=float, default=None,
                   help="Also stop after this many minutes of training in this process (a checkpoint and the final "
                        "model are saved; a resumed run continues the step count), for a fixed time budget.")
    g.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per optimizer step.")
    g.add_argument("--learning_rate", type=float, default=2e-4, help="Adam learning rate (paper: 2e-4).")
    g.add_argument("--lr_decay_steps", type=int, default=100000, help="Halve the learning rate every N steps.")
    g.add_argument("--lr_decay_gamma", type=float, default=0.5, help="Learning-rate factor at each decay.")
    g.add_argument("--adam_beta1", type=float, default=0.9)
    g.add_argument("--adam_beta2", type=float, default=0.999)
    g.add_argument("--adam_weight_decay", type=float, default=0.0)
    g.add_argument("--max_grad_norm", type=float, default=10.0, help="Gradient-norm clipping (paper: 10).")
    g.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None,
                   help="Overrides `accelerate config`; default: what accelerate is configured with.")
    g.add_argument("--use_ema", action="store_true", help="Keep an EMA of the trained model (diffusers EMAModel).")
    g.add_argument("--ema_decay", type=float, default=0.999, help="EMA maximum decay.")
    g.add_argument("--seed", type=int, default=0, help="Seed of weights, data order, crops, noise and timesteps.")

    g = parser.add_argument_group("checkpoints and outputs")
    g.add_argument("--output_dir", type=str, required=True, help="Where checkpoints and the final model go.")
    g.add_argument("--overwrite_output_dir", action="store_true",
                   help="Allow a final model to replace one already in `--output_dir`.")
    g.add_argument("--checkpointing_steps", type=int, default=5000, help="Save a resumable state every N steps.")
    g.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most N checkpoints.")
    g.add_argument("--resume_from_checkpoint", type=str, default=None,
                   help="`latest` (the newest checkpoint-N in --output_dir; a fresh start if none) or a path.")
    g.add_argument("--logging_steps", type=int, default=50, help="Log the mean loss every N steps.")
    g.add_argument("--report_to", type=str, default="tensorboard", help="accelerate tracker, or `none`.")
    g.add_argument("--tracker_project_name", type=str, default="srdiff")

    g = parser.add_argument_group("validation")
    g.add_argument("--validation_steps", type=int, default=None,
                   help="Validate every N steps (and at the end); unset or 0: no validation. Each validation logs "
                   "PSNR / LR-PSNR and writes LR | bicubic | model | HR to OUTPUT_DIR/validation/step-N.png.")
    g.add_argument("--validation_data_dir", type=str, default=None,
                   help="HR validation images (needs --validation_steps); default: the last "
                   "--num_validation_images training images, held out.")
    g.add_argument("--num_validation_images", type=int, default=4, help="How many validation images.")
    g.add_argument("--validation_crop", type=int, default=256,
                   help="Center-crop validation HR images to at most this size (keeps validation fast), at least "
                   "--upscale_factor; 0: full.")
    g.add_argument("--validation_inference_steps", type=int, default=100, help="DDPM steps for validation.")

    g = parser.add_argument_group("hub")
    g.add_argument("--push_to_hub", action="store_true", help="Upload the final model and card with huggingface_hub.")
    g.add_argument("--hub_model_id", type=str, default=None, help="Repository id, e.g. `user/srdiff-x4`.")
    g.add_argument("--hub_token", type=str, default=None, help="Token; default: the cached login.")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parses `argv` (default: `sys.argv[1:]`) into the namespace that [`train`] takes."""
    return build_parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """`srdiff train`: one stage, as described by `args`."""
    from ..training import train

    train(args)
    return 0


def cli_main(argv: Optional[List[str]] = None, prog: Optional[str] = None) -> int:
    r"""
    The command line of `examples/train_srdiff.py`: parses `argv` (default: `sys.argv[1:]`) and trains.

    A mistake in the arguments or the data ends the run with one line `PROG: error: MESSAGE` on stderr and exit
    status 2, as argparse's own errors, instead of a traceback; other errors keep their traceback. Under
    `accelerate launch` every process checks the same arguments, so each prints the same line and exits.

    Args:
        argv (`List[str]`, *optional*): The arguments; defaults to `sys.argv[1:]`.
        prog (`str`, *optional*): The program name in messages; defaults to the script's file name.

    Returns:
        `int`: the exit status, 0 after a complete run.
    """
    return command_line(register, run, argv, prog, DESCRIPTION)
