# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff export CHECKPOINT... (--pretrained_encoder ENCODER | --teacher MODEL) --output_dir MODEL`: a stage-diffusion
or distill checkpoint (or the mean of several) as an `SRDiffPipeline` folder."""

import argparse

DESCRIPTION = "Export a stage-diffusion checkpoint as an SRDiffPipeline folder."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", nargs="+",
        help="A checkpoint-N folder of a `--stage diffusion` or `distill` run; several: their mean."
    )
    parser.add_argument("--pretrained_encoder", default=None, help="The run's --pretrained_encoder folder.")
    parser.add_argument("--teacher", default=None, help="Instead, for a `--stage distill` run: its --teacher.")
    parser.add_argument("--prediction_type", choices=("epsilon", "sample", "v_prediction"), default=None,
                        help="What the U-Net predicts; default: the checkpoint's saved scheduler, else epsilon.")
    parser.add_argument("--default_num_inference_steps", type=int, default=None,
                        help="Store this step count as the model's default (1 for a one-step student).")
    parser.add_argument("--default_temperature", type=float, default=None,
                        help="Store this temperature as the model's default.")
    parser.add_argument("--output_dir", required=True, help="Where the pipeline goes.")
    parser.add_argument("--no_ema", action="store_true", help="Use the raw weights even if EMA weights exist.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a pipeline already in --output_dir.")
    parser.add_argument("--residual_rescale", type=float, default=2.0, help="The run's --residual_rescale.")
    parser.add_argument("--lr_upscale_divisor", type=float, default=255.0, help="The run's --lr_upscale_divisor.")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
                        help="Save the weights in this precision (float16: half the size); default: the run's.")
    parser.add_argument("--max_shard_size", default=None,
                        help="Split each model's weights into files of at most this size, e.g. 15MB.")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..training import export_pipeline

    export_pipeline(
        args.checkpoint,
        args.pretrained_encoder,
        args.output_dir,
        use_ema=not args.no_ema,
        overwrite=args.overwrite,
        residual_rescale=args.residual_rescale,
        lr_upscale_divisor=args.lr_upscale_divisor,
        dtype=getattr(torch, args.dtype) if args.dtype else None,
        max_shard_size=args.max_shard_size,
        teacher=args.teacher,
        prediction_type=args.prediction_type,
        default_num_inference_steps=args.default_num_inference_steps,
        default_temperature=args.default_temperature,
    )
    print(f"Saved the pipeline of {', '.join(args.checkpoint)} to {args.output_dir}")
    return 0
