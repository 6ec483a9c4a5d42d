#!/usr/bin/env bash
# Issue 16, part 5: on one lent GPU, the realistic model at the paper's widths (U-Net 64,128,128,256; RRDB 32x8) in
# bf16 on BSD100 for about 8 minutes, exported in float16 in shards of at most 15 MB, scored on Set14-real.
# Run on the device (after benchmarks/gpu/prepare.sh here); the variables below shrink it for a CPU smoke test.
set -euo pipefail
cd "$(dirname "$0")/../.."
WHEELS=${WHEELS-.whl}  # the packages the device image lacks (prepare.sh); WHEELS= skips them
if [ -n "$WHEELS" ] && [ -d "$WHEELS" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site
fi
# no progress bars in the log that comes back: the loss lines every 100 steps say where it is
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_DISABLE=1
PYTHON=${PYTHON:-python3}
DATA=${DATA:-data/gpu}
RESULTS=${OUT:-runs/gpu}  # $OUT is the folder that comes back from the device
WORK=${WORK:-/tmp/srdiff-gpu}
RRDB_MINUTES=${RRDB_MINUTES:-2.5}
UNET_MINUTES=${UNET_MINUTES:-5.5}
RRDB_SIZE=${RRDB_SIZE:-"--rrdb_num_features 32 --rrdb_num_blocks 8"}
UNET_WIDTHS=${UNET_WIDTHS:-64,128,128,256}
BATCH=${BATCH:-64}
RESOLUTION=${RESOLUTION:-128}
PRECISION=${PRECISION:-bf16}
WORKERS=${WORKERS:-8}
mkdir -p "$RESULTS" "$WORK"
COMMON="--train_data_dir $DATA/BSD100-HR --degradation realistic --resolution $RESOLUTION --train_batch_size $BATCH
  --mixed_precision $PRECISION --use_ema --dataloader_num_workers $WORKERS --max_train_steps 1000000
  --checkpointing_steps 1000000 --logging_steps 100 --report_to none --seed 0 --resume_from_checkpoint latest"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$RESULTS/gpu.txt" || true

# stage 1: the RRDB encoder (L1)
$PYTHON -m srdiff_diffusers train --stage rrdb $RRDB_SIZE $COMMON --learning_rate 2e-4 \
    --max_train_minutes "$RRDB_MINUTES" --output_dir "$WORK/rrdb" 2>&1 | tee "$RESULTS/train.log"
# stage 2: the noise predictor on the frozen encoder
$PYTHON -m srdiff_diffusers train --stage diffusion --pretrained_encoder "$WORK/rrdb" \
    --unet_block_out_channels "$UNET_WIDTHS" $COMMON --learning_rate 2e-4 --max_train_minutes "$UNET_MINUTES" \
    --output_dir "$WORK/diffusion" 2>&1 | tee -a "$RESULTS/train.log"
grep "throughput" "$RESULTS/train.log"

# the shipped form: float16, no file over 16 MB
CHECKPOINT=$(ls -d "$WORK"/diffusion/checkpoint-* | sort -t- -k2 -n | tail -1)
rm -rf "$WORK/srdiff-realistic-x4"
$PYTHON -m srdiff_diffusers export "$CHECKPOINT" --pretrained_encoder "$WORK/rrdb" \
    --output_dir "$WORK/srdiff-realistic-x4" --dtype float16 --max_shard_size 15MB
find "$WORK/srdiff-realistic-x4" -type f -size +16M | grep . && { echo "a file is over 16 MB" >&2; exit 1; }

# scored as `srdiff upscale` samples by default (10 DDIM steps), against bicubic and its RRDB head
$PYTHON -m srdiff_diffusers evaluate --model "$WORK/srdiff-realistic-x4" --hr-dir "$DATA/Set14-HR" \
    --lr-dir "$DATA/Set14-real-LR" --baselines bicubic,rrdb --scheduler ddim --steps 10 --no-lpips --num-grids 1 \
    -o "$WORK/eval-set14-real"
cp "$WORK/eval-set14-real/results.md" "$RESULTS/set14_real.md"
cat "$RESULTS/set14_real.md"
# the model comes back as 15 MB parts of one tar (the device returns at most 8 files of 16 MiB)
tar -C "$WORK" -cf - srdiff-realistic-x4 | split -b 15M - "$RESULTS/srdiff-realistic-x4.tar.part-"
ls -l "$RESULTS"
