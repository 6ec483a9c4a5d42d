# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
Side-by-side benchmark of srdiff-diffusers against the authors' original SRDiff code (LeiaLi/SRDiff).

The original model classes are imported at run time from a checkout given with `--original-repo` (nothing of it is
copied here). Both implementations get the same random weights: the original models are built, saved as an
original-format checkpoint and converted with `srdiff_diffusers.convert_original_checkpoint`. Every measurement
alternates the variants (A B C A B C ...) so that machine noise hits them alike, and every figure is also given as
a ratio to the original measured in the same run.

Measured:
  * noise-predictor latency per step, and the largest difference of each variant's prediction from the original's;
  * whole-image latency for the paper's DDPM-100 sampler (extrapolated from two short runs when asked) and for the
    fast schedulers (measured in full);
  * peak memory: resident set size on the CPU (sampled, above the level before the call), or
    `torch.cuda.max_memory_allocated` on a GPU;
  * training-step throughput (fp32, and bf16/fp16 autocast);
  * the page faults of one call (memory new to the process; `--retain-freed-memory` keeps freed memory instead);
  * the PSNR between a full 100-step bf16 sample and the fp32 sample, and the fp32 sample's difference from the
    original's (same noise);
  * the machine's plain 3x3 convolution throughput, and the share of it that a U-Net step reaches.

Example:
    python benchmarks/compare_original.py --original-repo /path/to/SRDiff --config celeba8x --out results.json
"""

import argparse
import copy
import importlib
import os
import sys
import tempfile
import time
import types
from typing import Dict, List

import torch
import torch.nn.functional as F

from srdiff_diffusers.runtime import retain_freed_cpu_memory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as bench  # noqa: E402


CONFIGS = {
    # The paper's two configurations (the authors' configs/diffsr_celeb.yaml and configs/diffsr_df2k4x.yaml).
    "celeba8x": dict(sr_scale=8, hidden_size=64, unet_dim_mults="1|2|2|4", rrdb_num_feat=32, rrdb_num_block=8),
    "div2k4x": dict(sr_scale=4, hidden_size=64, unet_dim_mults="1|2|3|4", rrdb_num_feat=32, rrdb_num_block=8),
}
# The remaining keys the original modules read from their global `hparams` (configs/diffsr_base.yaml).
BASE_HPARAMS = dict(
    use_attn=False, res=True, up_input=False, use_wn=False, weight_init=False, gn_groups=0, beta_schedule="cosine",
    beta_s=0.008, beta_end=0.02, timesteps=100, res_rescale=2.0, clip_input=True, use_rrdb=True, fix_rrdb=True,
    aux_l1_loss=True, aux_ssim_loss=False, aux_percep_loss=False, loss_type="l1", lr=2e-4,
)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SHORT = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


# ------------------------------------------------------------------------------------------------------------------
# the original code
# ------------------------------------------------------------------------------------------------------------------


def import_original(repo: str, hparams_update: Dict[str, object]):
    """
    Imports the original model classes from `repo`. Its `models.diffusion` imports `torchvision` and `einops` at
    module level for parts unused here (a VGG perceptual loss, linear attention); when they are not installed they
    are replaced by empty stand-ins for the duration of the import only, and reported.
    """
    if not os.path.isfile(os.path.join(repo, "models", "diffsr_modules.py")):
        raise ValueError(f"{repo!r} is not a checkout of LeiaLi/SRDiff (no models/diffsr_modules.py in it).")
    stubbed = []
    for name in ("torchvision", "einops"):
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            if name == "einops":
                def rearrange(*args, **kwargs):
                    raise RuntimeError("einops is not installed (stand-in used by compare_original.py)")
                stub.rearrange = rearrange
            sys.modules[name] = stub
            stubbed.append(name)
    sys.path.insert(0, os.path.abspath(repo))
    try:
        from utils.hparams import hparams

        hparams.clear()
        hparams.update(BASE_HPARAMS)
        hparams.update(hparams_update)
        from models.diffsr_modules import RRDBNet, Unet
        from models.diffusion import GaussianDiffusion
    finally:
        # The stand-ins must not outlive the import: other libraries probe for these packages.
        for name in stubbed:
            sys.modules.pop(name, None)
    return Unet, RRDBNet, GaussianDiffusion, hparams, stubbed


def build_original(repo: str, config: Dict[str, object], seed: int):
    Unet, RRDBNet, GaussianDiffusion, hparams, stubbed = import_original(repo, config)
    torch.manual_seed(seed)
    mults = tuple(int(m) for m in config["unet_dim_mults"].split("|"))
    unet = Unet(config["hidden_size"], out_dim=3, cond_dim=config["rrdb_num_feat"], dim_mults=mults)
    rrdb = RRDBNet(3, 3, config["rrdb_num_feat"], config["rrdb_num_block"], config["rrdb_num_feat"] // 2)
    diffusion = GaussianDiffusion(unet, rrdb, timesteps=hparams["timesteps"], loss_type=hparams["loss_type"])
    diffusion.sample_tqdm = False
    return diffusion.eval(), stubbed


def convert_same_weights(diffusion, workdir: str):
    """Writes the original models as an original-format checkpoint and converts it: the same weights in both."""
    from srdiff_diffusers import convert_original_checkpoint

    path = os.path.join(workdir, "original_random.ckpt")
    checkpoint = {"global_step": 0, "optimizer_states": [], "state_dict": {"model": diffusion.state_dict()}}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)  # the legacy format of the original
    pipe = convert_original_checkpoint(path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------------------------------------
# our variants
# ------------------------------------------------------------------------------------------------------------------


def make_variant(pipe, dtype: torch.dtype, channels_last: bool, compile_unet: bool, device: torch.device):
    """A copy of the converted pipeline in `dtype`, optionally channels_last and with a compiled U-Net."""
    from srdiff_diffusers import SRDiffPipeline

    unet = copy.deepcopy(pipe.unet).to(device=device, dtype=dtype)
    encoder = copy.deepcopy(pipe.encoder).to(device=device, dtype=dtype)
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
        encoder = encoder.to(memory_format=torch.channels_last)
    if compile_unet:
        unet.compile()  # nn.Module.compile: compiles forward in place, the module keeps its type and methods
    variant = SRDiffPipeline(
        unet=unet.eval(),
        encoder=encoder.eval(),
        scheduler=copy.deepcopy(pipe.scheduler),
        residual_rescale=pipe.config.residual_rescale,
        lr_upscale_divisor=pipe.config.lr_upscale_divisor,
    )
    variant.set_progress_bar_config(disable=True)
    return variant


def variant_name(dtype, channels_last, compiled):
    return SHORT[dtype] + ("+cl" if channels_last else "") + ("+compile" if compiled else "")


def parse_variants(args) -> List[tuple]:
    variants = []
    for spec in args.variants:
        parts = spec.split("+")
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(parts[0])
        unknown = set(parts[1:]) - {"cl", "compile"}
        if dtype is None or unknown:
            raise ValueError(f"Unknown variant {spec!r}: use fp32|bf16|fp16, optionally with +cl and/or +compile.")
        variants.append((dtype, "cl" in parts, "compile" in parts))
    return variants


# ------------------------------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def per_step(args, diffusion, ours, device, results):
    scale = diffusion.denoise_fn.cond_proj.stride[0]
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            print(f"  HR {size}x{size}, batch {batch}", flush=True)
            gen = torch.Generator().manual_seed(args.seed)
            x = torch.randn(batch, 3, size, size, generator=gen).to(device)
            lr = (torch.rand(batch, 3, size // scale, size // scale, generator=gen) * 2 - 1).to(device)
            t_orig = torch.full((batch,), args.timestep, dtype=torch.long, device=device)
            t_ours = torch.tensor(args.timestep, device=device)
            _, features = diffusion.rrdb(lr, True)
            reference = diffusion.denoise_fn(x, t_orig, features, None)
            calls = {"original": lambda: diffusion.denoise_fn(x, t_orig, features, None)}
            meta = {}
            for name, pipe in ours.items():
                dtype = pipe.unet.dtype
                channels_last = name.split("+")[1:2] == ["cl"]
                xx = x.to(dtype)
                if channels_last:
                    xx = xx.contiguous(memory_format=torch.channels_last)
                start = time.perf_counter()
                projected = pipe.unet.project_condition(pipe.encoder.encode(lr.to(dtype)))  # once per image
                output = pipe.unet(xx, t_ours, projected_condition=projected).sample  # also compiles, if asked
                meta[name] = {
                    "first_call_s": time.perf_counter() - start,
                    "max_abs_diff_vs_original": (output.float() - reference).abs().max().item(),
                }
                calls[name] = lambda pipe=pipe, xx=xx, projected=projected: pipe.unet(
                    xx, t_ours, projected_condition=projected
                )
            times = bench.alternate(calls, args.repeats, device)
            flops = bench.count_flops(diffusion.denoise_fn, calls["original"])
            base = bench.summarize(times["original"])["median_s"]
            for name in calls:
                stats = bench.summarize(times[name])
                row = {
                    "size": size, "batch": batch, "variant": name, "median_s": stats["median_s"],
                    "min_s": stats["min_s"], "ratio_vs_original": stats["median_s"] / base,
                    "gflop_per_call": flops / 1e9, "achieved_gflops": flops / stats["median_s"] / 1e9,
                    **bench.measure_memory(calls[name], device),
                }
                row.update(meta.get(name, {"max_abs_diff_vs_original": 0.0}))
                rows.append(row)
    results["per_step"] = rows
    bench.print_table(
        rows,
        ["size", "batch", "variant", "median_s", "min_s", "ratio_vs_original", "max_abs_diff_vs_original",
         "achieved_gflops", "peak_mib", "page_faults"],
        "Noise predictor, one step (the original recomputes the condition projection every step; ours takes it "
        "precomputed once per image)",
    )


def _original_sample(diffusion, lr, lr_up, steps: int, seed: int):
    diffusion.num_timesteps = steps  # runs t = steps-1 .. 0 of the same 100-step schedule: the same work per step
    try:
        torch.manual_seed(seed)
        image, _ = diffusion.sample(lr, lr_up, lr_up.shape)
    finally:
        diffusion.num_timesteps = len(diffusion.betas)
    return image


@torch.no_grad()
def whole_image(args, diffusion, ours, device, results):
    scale = diffusion.denoise_fn.cond_proj.stride[0]
    reference_pipe = next(iter(ours.values()))
    rows = []
    short, long = args.sample_steps
    total = len(diffusion.betas)
    for size in args.whole_sizes:
        for batch in args.whole_batches:
            print(f"  HR {size}x{size}, batch {batch}", flush=True)
            gen = torch.Generator().manual_seed(args.seed)
            lr01 = torch.rand(1, 3, size // scale, size // scale, generator=gen).to(device)
            lr = (lr01 * 2 - 1).repeat(batch, 1, 1, 1)
            lr_up = reference_pipe.upscale_bicubic(lr01.float()).repeat(batch, 1, 1, 1)  # the original's data loader

            def original(steps):
                return lambda: _original_sample(diffusion, lr, lr_up, steps, args.seed)

            def ours_call(pipe, steps, scheduler=None):
                def run():
                    if scheduler is not None:
                        pipe.scheduler = scheduler
                    return pipe(
                        lr01, num_inference_steps=steps, num_images_per_prompt=batch, output_type="raw",
                        generator=torch.Generator().manual_seed(args.seed),
                    )
                return run

            # DDPM: two run lengths; per step = difference / (long - short), fixed = the rest; then 100 steps.
            calls = {}
            for steps in sorted({short, long}):
                calls[f"original@{steps}"] = original(steps)
                for name, pipe in ours.items():
                    calls[f"{name}@{steps}"] = ours_call(pipe, steps)
            times = bench.alternate(calls, args.whole_repeats, device)
            medians = {k: bench.summarize(v)["median_s"] for k, v in times.items()}
            estimates = {}
            for name in ["original", *ours]:
                if long == total:
                    estimates[name] = (medians[f"{name}@{long}"], "measured")
                else:
                    per = (medians[f"{name}@{long}"] - medians[f"{name}@{short}"]) / max(long - short, 1)
                    fixed = medians[f"{name}@{long}"] - per * long
                    estimates[name] = (fixed + per * total, f"extrapolated from {short} and {long} steps")
            base = estimates["original"][0]
            for name, (seconds, how) in estimates.items():
                peak_call = original(short) if name == "original" else ours_call(ours[name], short)
                rows.append({
                    "size": size, "batch": batch, "variant": name, "sampler": f"DDPM-{total}", "seconds": seconds,
                    "ratio_vs_original_ddpm": seconds / base, "how": how,
                    "peak_mib": bench.measure_peak(peak_call, device),
                })
            # fast schedulers, measured in full (the original has none; ratios are to its DDPM-100)
            fast_calls = {}
            for scheduler_name in args.fast_schedulers:
                for name, pipe in ours.items():
                    scheduler = pipe.fast_scheduler(scheduler_name)
                    fast_calls[f"{name}|{scheduler_name}"] = ours_call(pipe, args.fast_steps, scheduler)
            restore = {name: copy.deepcopy(pipe.scheduler) for name, pipe in ours.items()}
            if fast_calls:
                fast_times = bench.alternate(fast_calls, args.whole_repeats, device)
                for key, samples in fast_times.items():
                    name, scheduler_name = key.split("|")
                    seconds = bench.summarize(samples)["median_s"]
                    rows.append({
                        "size": size, "batch": batch, "variant": name,
                        "sampler": f"{scheduler_name}-{args.fast_steps}", "seconds": seconds,
                        "ratio_vs_original_ddpm": seconds / base, "how": "measured",
                    })
            for name, pipe in ours.items():
                pipe.scheduler = restore[name]
    results["whole_image"] = rows
    bench.print_table(
        rows,
        ["size", "batch", "variant", "sampler", "seconds", "ratio_vs_original_ddpm", "peak_mib", "how"],
        "Whole image (LR encoding, sampling loop, output; batch = samples of one LR image)",
    )


@torch.no_grad()
def quality(args, diffusion, ours, device, results):
    """Full 100-step samples with the same noise: fp32 vs the original, reduced precision vs fp32 (PSNR)."""
    scale = diffusion.denoise_fn.cond_proj.stride[0]
    size = args.quality_size
    gen = torch.Generator().manual_seed(args.seed + 1)
    lr01 = torch.rand(1, 3, size // scale, size // scale, generator=gen).to(device)
    reference_pipe = next(iter(ours.values()))
    lr_up = reference_pipe.upscale_bicubic(lr01.float())
    total = len(diffusion.betas)
    start = time.perf_counter()
    original = _original_sample(diffusion, lr01 * 2 - 1, lr_up, total, args.seed)
    rows = [{"variant": "original", "seconds": time.perf_counter() - start}]
    samples = {}
    for name, pipe in ours.items():
        start = time.perf_counter()
        samples[name] = pipe(
            lr01, num_inference_steps=total, output_type="raw", generator=torch.Generator().manual_seed(args.seed)
        ).images.float()
        rows.append({"variant": name, "seconds": time.perf_counter() - start})
    fp32 = next((samples[n] for n in samples if n.startswith("fp32")), None)
    to01 = lambda img: ((img + 1) / 2).clamp(0, 1)  # noqa: E731
    for row in rows:
        image = original if row["variant"] == "original" else samples[row["variant"]]
        row["max_abs_diff_vs_original"] = (image - original).abs().max().item()
        row["psnr_vs_original_db"] = bench.psnr(to01(image), to01(original))
        if fp32 is not None:
            row["psnr_vs_fp32_db"] = bench.psnr(to01(image), to01(fp32))
    results["quality"] = {"size": size, "steps": total, "rows": rows}
    bench.print_table(
        rows,
        ["variant", "seconds", "max_abs_diff_vs_original", "psnr_vs_original_db", "psnr_vs_fp32_db"],
        f"Full {total}-step sample at HR {size}x{size}, same noise (images in [0, 1] for PSNR)",
    )


def training(args, diffusion, pipe, device, results):
    """
    One optimizer step of the noise predictor (batch `--train-batch`, HR patch `--train-patch`), the encoder frozen,
    Adam at 2e-4 as in the paper. up(LR) is precomputed for both, as the original's data loader does.
    """
    scale = diffusion.denoise_fn.cond_proj.stride[0]
    b, size = args.train_batch, args.train_patch
    gen = torch.Generator().manual_seed(args.seed)
    hr = (torch.rand(b, 3, size, size, generator=gen) * 2 - 1).to(device)
    lr = (torch.rand(b, 3, size // scale, size // scale, generator=gen) * 2 - 1).to(device)
    lr_up = F.interpolate(lr, scale_factor=scale, mode="bicubic")  # any up(LR): the cost is the data loader's

    original = copy.deepcopy(diffusion).to(device).train()
    original_opt = torch.optim.Adam(original.parameters(), lr=2e-4)

    def original_step(dtype=None):
        def step():
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                losses, _, _ = original(hr, lr, lr_up)
                loss = sum(losses.values())
            original_opt.zero_grad(set_to_none=True)
            loss.backward()
            original_opt.step()
        return step

    scheduler = pipe.scheduler
    train_steps = scheduler.config.num_train_timesteps

    def ours_step(channels_last, dtype=None, compiled=False):
        unet = copy.deepcopy(pipe.unet).to(device).train()
        encoder = copy.deepcopy(pipe.encoder).to(device).eval().requires_grad_(False)
        if channels_last:
            unet = unet.to(memory_format=torch.channels_last)
            encoder = encoder.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(unet.parameters(), lr=2e-4)
        if compiled:
            unet.compile()  # what `accelerate launch --dynamo_backend inductor` does to the trained model
        hr_, lr_, lr_up_ = hr, lr, lr_up
        if channels_last:
            hr_, lr_, lr_up_ = (t.contiguous(memory_format=torch.channels_last) for t in (hr, lr, lr_up))

        def step():
            with torch.no_grad():
                condition = encoder.encode(lr_)
            x0 = ((hr_ - lr_up_) * 2).clamp(-1, 1)
            noise = torch.randn_like(x0)
            timesteps = torch.randint(0, train_steps, (b,), device=device)
            noisy = scheduler.add_noise(x0, noise, timesteps)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                prediction = unet(noisy, timesteps, condition).sample
            loss = F.l1_loss(prediction.float(), noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    calls = {"original": original_step(), "fp32": ours_step(False), "fp32+cl": ours_step(True)}
    if args.train_compile:
        calls["fp32+cl+compile"] = ours_step(True, compiled=True)
    for dtype in args.train_autocast:
        calls[f"original+{SHORT[dtype]}-autocast"] = original_step(dtype)
        calls[f"{SHORT[dtype]}-autocast+cl"] = ours_step(True, dtype)
    times = bench.alternate(calls, args.train_repeats, device)
    base = bench.summarize(times["original"])["median_s"]
    rows = []
    for name, samples in times.items():
        seconds = bench.summarize(samples)["median_s"]
        rows.append({
            "variant": name, "seconds_per_step": seconds, "images_per_s": b / seconds,
            "throughput_vs_original": base / seconds, **bench.measure_memory(calls[name], device),
        })
    results["training"] = {"batch": b, "hr_patch": size, "rows": rows}
    bench.print_table(
        rows, ["variant", "seconds_per_step", "images_per_s", "throughput_vs_original", "peak_mib", "page_faults"],
        f"Training step (batch {b}, HR patch {size}, Adam; encoder frozen)",
    )


# ------------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original-repo", required=True, help="A checkout of github.com/LeiaLi/SRDiff.")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="celeba8x")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:n].")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU); default: torch's.")
    parser.add_argument(
        "--variants", nargs="+", default=None,
        help="Our variants: fp32|bf16|fp16 with optional +cl (channels_last) and +compile (torch.compile), e.g. "
        "fp32 fp32+cl bf16+cl. Default: fp32 fp32+cl bf16 bf16+cl (and fp16+cl on CUDA).",
    )
    parser.add_argument(
        "--sections", nargs="+", default=["conv", "step", "whole", "quality", "train"],
        choices=["conv", "step", "whole", "quality", "train"],
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[160, 512], help="HR sizes for the per-step test.")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3, help="Alternating rounds per per-step measurement.")
    parser.add_argument("--timestep", type=int, default=50)
    parser.add_argument("--whole-sizes", nargs="+", type=int, default=[160])
    parser.add_argument("--whole-batches", nargs="+", type=int, default=[1])
    parser.add_argument(
        "--sample-steps", nargs=2, type=int, default=[2, 10], metavar=("SHORT", "LONG"),
        help="DDPM run lengths measured; the 100-step time is extrapolated from them (LONG=100 measures it).",
    )
    parser.add_argument("--whole-repeats", type=int, default=2)
    parser.add_argument("--fast-schedulers", nargs="*", default=["dpmsolver++", "ddim", "unipc"])
    parser.add_argument("--fast-steps", type=int, default=20)
    parser.add_argument("--quality-size", type=int, default=160)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-patch", type=int, default=96)
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument(
        "--train-autocast", nargs="*", default=None, choices=sorted(DTYPES),
        help="Autocast dtypes for the training comparison (default bfloat16; on CUDA also float16).",
    )
    parser.add_argument(
        "--train-compile", action="store_true", help="Also time the training step with a torch.compile'd U-Net."
    )
    parser.add_argument(
        "--freezing", action="store_true",
        help="torch._inductor.config.freezing for the +compile variants: inference graphs with the weights as "
        "constants (prepacked for oneDNN on the CPU); training graphs are not frozen.",
    )
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="wall: elapsed time. cpu: CPU time of the main thread, robust on a busy shared machine; needs "
        "--threads 1 on the CPU (then every kernel runs on that thread).",
    )
    parser.add_argument(
        "--retain-freed-memory", action="store_true",
        help="Keep freed CPU memory in the process (srdiff_diffusers.runtime, what the srdiff commands and "
        "the training script do on the CPU) for the whole run, so for both implementations alike. Default: glibc's "
        "defaults, under which every large activation is mmap'ed anew and page-faulted in. With it, peak_mib only "
        "shows growth beyond the memory that earlier calls left in the process (measure peaks without it).",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="Write the results as JSON here (atomically).")
    args = parser.parse_args(argv)
    args.train_autocast = [DTYPES[d] for d in (args.train_autocast if args.train_autocast is not None else (
        ["bfloat16", "float16"] if args.device.startswith("cuda") else ["bfloat16"]))]
    if args.variants is None:
        args.variants = ["fp32", "fp32+cl", "bf16", "bf16+cl"] + (["fp16+cl"] if args.device.startswith("cuda") else [])
    if args.clock == "cpu" and (args.device.startswith("cuda") or args.threads != 1):
        parser.error("--clock cpu measures one CPU thread: use it with --device cpu --threads 1")
    if args.sample_steps[0] >= args.sample_steps[1]:
        parser.error("--sample-steps SHORT LONG needs SHORT < LONG")
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.retain_freed_memory and not retain_freed_cpu_memory():
        raise SystemExit("--retain-freed-memory: not applied (needs Linux with glibc; see runtime.py)")
    bench.set_clock(args.clock)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # diffusers 0.42 warns about fp32 modules on every `.to(dtype)`
    if args.train_compile or any("+compile" in v for v in args.variants):
        import torch._inductor.config as inductor_config

        # One static graph per input shape: with automatic dynamic shapes the second size would get a
        # shape-generic graph, slower than what a user who compiles for one size gets.
        torch._dynamo.config.automatic_dynamic_shapes = False
        torch._dynamo.config.cache_size_limit = 64
        inductor_config.freezing = args.freezing
    config = CONFIGS[args.config]
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": bench.machine_info(device)}
    print(f"machine: {results['machine']}")

    with bench.section("building the original models and converting their weights"):
        diffusion, stubbed = build_original(args.original_repo, config, args.seed)
        diffusion.to(device)
        with tempfile.TemporaryDirectory() as workdir:
            pipe = convert_same_weights(diffusion.cpu(), workdir)
        diffusion.to(device)
        results["stubbed_modules"] = stubbed
        if stubbed:
            print(f"  not installed, replaced by empty stand-ins while importing the original: {stubbed}")
        ours = {}
        for dtype, channels_last, compiled in parse_variants(args):
            ours[variant_name(dtype, channels_last, compiled)] = make_variant(
                pipe, dtype, channels_last, compiled, device
            )

    if "conv" in args.sections:
        with bench.section("plain 3x3 convolution throughput (64 -> 64 channels, 160x160, batch 1)"):
            conv = {}
            for dtype in sorted({p.unet.dtype for p in ours.values()} | {torch.float32}, key=str):
                conv[SHORT[dtype]] = bench.conv_throughput(device, dtype)
                print(f"  {SHORT[dtype]}: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in conv[SHORT[dtype]].items()))
            results["conv_gflops"] = conv
    try:
        if "step" in args.sections:
            with bench.section("noise predictor per step"):
                per_step(args, diffusion, ours, device, results)
                if "conv_gflops" in results:
                    for row in results["per_step"]:
                        dtype = "fp32" if row["variant"] == "original" else row["variant"].split("+")[0]
                        peak = max(results["conv_gflops"].get(dtype, results["conv_gflops"]["fp32"]).values())
                        row["share_of_conv_peak"] = row["achieved_gflops"] / peak
                    bench.print_table(
                        results["per_step"], ["size", "batch", "variant", "achieved_gflops", "share_of_conv_peak"],
                        "Share of the plain 3x3 conv throughput (same dtype, best layout) reached by a whole step",
                    )
        if "whole" in args.sections:
            with bench.section("whole image"):
                whole_image(args, diffusion, ours, device, results)
        if "quality" in args.sections:
            with bench.section("full-sample quality"):
                quality(args, diffusion, ours, device, results)
        if "train" in args.sections:
            with bench.section("training step"):
                training(args, diffusion, pipe, device, results)
    finally:
        results["machine"]["load_average_end"] = os.getloadavg()
        if args.out:
            bench.write_json(args.out, results)
            print(f"\nresults written to {args.out}")
    return results


if __name__ == "__main__":
    main()
