# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""`srdiff demo`: serve the web demo (a Gradio page and its `upscale` API) on this machine."""

import argparse

from .speed import add_speed_arguments, apply_speed_arguments, resolve_device, torch_dtype


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="A shipped model's name, a saved SRDiffPipeline folder or a Hub id, offered first (the shipped models "
        "are offered too); it is loaded at start-up, so a wrong one fails now.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to serve on (0.0.0.0: every interface).")
    parser.add_argument("--port", type=int, default=7860, help="Port (default: 7860).")
    parser.add_argument("--share", action="store_true", help="Also serve on a public gradio.live link (72 hours).")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="Upscales run at once; others wait in the queue (default: 1)."
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="Largest input in LR pixels (default: 589824, i.e. 768x768); larger uploads are refused with a message.",
    )
    parser.add_argument("--max-samples", type=int, default=4, help="Most samples per request (default: 4).")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="Default: cuda when available.")
    add_speed_arguments(parser)


def run(args: argparse.Namespace) -> int:
    for option in ("port", "concurrency", "max_pixels", "max_samples"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ValueError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    try:
        from ..demo import DEFAULT_MAX_PIXELS, build_demo, launch, shipped_models
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("gradio"):
            raise
        raise ValueError('the web demo needs Gradio: pip install "srdiff-diffusers[demo]"') from None
    device = resolve_device(args)

    models = shipped_models()
    if args.model is not None:
        models = {args.model: args.model, **{name: path for name, path in models.items() if name != args.model}}
    demo = build_demo(
        models,
        device=device,
        dtype=torch_dtype(args),
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        max_samples=args.max_samples,
        concurrency=args.concurrency,
        prepare_pipeline=lambda pipe: apply_speed_arguments(pipe, args),
        preload=True,
    )
    launch(demo, server_name=args.host, server_port=args.port, share=args.share)
    return 0
