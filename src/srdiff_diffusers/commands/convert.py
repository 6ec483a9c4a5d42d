# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff convert ORIGINAL.ckpt OUTPUT_DIR`: an original SRDiff checkpoint to a diffusers folder."""

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="ORIGINAL.ckpt", help="The authors' checkpoint (model_ckpt_steps_*.ckpt)."
    )
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="The diffusers folder to write.")
    parser.add_argument(
        "--original-config",
        metavar="CONFIG.yaml",
        default=None,
        help="The original YAML config, cross-checked against the tensors (needs PyYAML).",
    )
    parser.add_argument(
        "--lr-upscale-divisor",
        type=int,
        choices=(255, 256),
        default=256,
        help="up(LR) from uint8 / this. 256 (default) is what the released weights were trained with; 255 is exact.",
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace OUTPUT_DIR if it exists and is not empty.")


def run(args: argparse.Namespace) -> int:
    from ..conversion import convert_original_checkpoint

    pipeline = convert_original_checkpoint(
        args.checkpoint,
        args.output_dir,
        original_config=args.original_config,
        lr_upscale_divisor=float(args.lr_upscale_divisor),
        overwrite=args.overwrite,
    )
    unet, encoder = pipeline.unet.config, pipeline.encoder.config
    print(
        f"Converted {args.checkpoint} -> {args.output_dir}: x{unet.upscale_factor}, U-Net widths "
        f"{tuple(unet.block_out_channels)}, RRDB {encoder.num_features} features x {encoder.num_blocks} blocks, "
        f"up(LR) from uint8 / {pipeline.config.lr_upscale_divisor:g}."
    )
    print(f"Upscale with: srdiff upscale INPUT... -o OUTDIR --model {args.output_dir}")
    return 0
