#!/usr/bin/env bash
# Run here, before a lent GPU's one call: copies the data the GPU run reads into data/gpu/ and the Python packages
# the device image lacks into .whl/ (both git-ignored), then prints the `run` call to make. See docs/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/datasets}
mkdir -p data/gpu
cp -r "$SHARED/BSD100/HR" data/gpu/BSD100-HR
cp -r "$SHARED/Set14/HR" data/gpu/Set14-HR
python -m srdiff_diffusers degrade --hr-dir data/gpu/Set14-HR -o data/gpu/Set14-real-LR --seed 0
# The device image has torch, accelerate, huggingface-hub, safetensors, scikit-image, pyarrow, pandas and fsspec.
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    diffusers==0.42.1 kornia==0.9.0 kornia_rs==0.2.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
# what travels: the tracked files, the untracked ones git does not ignore, and the two carried folders (64 MiB at most)
total=$( (git ls-files -z --cached --others --exclude-standard; find data/gpu .whl -type f -print0) | du -cb --files0-from=- | tail -1 | cut -f1)
echo "travels: $((total / 1048576)) MiB of the 64 MiB a device call takes"
[ "$total" -le $((64 * 1048576)) ] || { echo "too large for one device call: carry less" >&2; exit 1; }
echo 'run(command="bash benchmarks/gpu/train_realistic.sh", carry=["data/gpu", ".whl"], timeout_s=600)'
