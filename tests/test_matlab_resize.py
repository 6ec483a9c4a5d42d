"""The MATLAB bicubic `imresize` port: hand-computed weights, invariants, and the benchmark LR sets."""

from fractions import Fraction as Fr

import numpy as np
import PIL.Image
import pytest
import torch

from srdiff_diffusers.matlab_resize import imresize, resize_weights

from conftest import DATASETS, require_dir


# Keys' cubic kernel (a = -0.5) at the distances that occur below, by hand:
#   k(x) = 1.5|x|^3 - 2.5|x|^2 + 1                 for |x| <= 1
#   k(x) = -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2         for 1 < |x| <= 2, else 0
#   k(0.25) = 3/128 - 20/128 + 1 = 111/128          k(0.75) = 81/128 - 180/128 + 1 = 29/128
#   k(1.25) = -125/128 + 500/128 - 3 = -9/128       k(1.75) = -343/128 + 980/128 - 5 = -3/128
#   k(2.25) = k(2.75) = 0
#
# x2 upscaling of 4 pixels: output pixel x (1-based) sits at u = x/2 + 1/4 in input coordinates. Taps outside
# 1..4 are mirrored (0 -> 1, -1 -> 2, 5 -> 4). Output 1: u = 0.75, taps 0, 1, 2 (and -1) at distances 0.75, -0.25,
# -1.25 (1.75): pixel 1 gets k(0.75) + k(0.25) = 140/128, pixel 2 gets k(1.75) + k(1.25) = -12/128.
UP_X2 = [
    [Fr(140, 128), Fr(-12, 128), 0, 0],
    [Fr(102, 128), Fr(29, 128), Fr(-3, 128), 0],  # u = 1.25: pixels 0(->1), 1, 2, 3 at 1.25, 0.25, -0.75, -1.75
    [Fr(26, 128), Fr(111, 128), Fr(-9, 128), 0],  # u = 1.75: pixels 0(->1), 1, 2, 3 at 1.75, 0.75, -0.25, -1.25
    [Fr(-9, 128), Fr(111, 128), Fr(29, 128), Fr(-3, 128)],  # u = 2.25: pixels 1..4 at 1.25, 0.25, -0.75, -1.75
]
UP_X2 += [row[::-1] for row in UP_X2[::-1]]  # the second half mirrors the first
# x1/2 downscaling with antialiasing: the kernel is stretched by 2 (weights k(d / 2) / 2, then normalised),
# output 1 sits at u = 2 * 1 - 1/2 = 1.5; taps -3..6 at distances 4.5 .. -4.5, i.e. k at 2.25, 1.75, 1.25, 0.75,
# 0.25, 0.25, 0.75, 1.25, 1.75, 2.25 = (0, -3, -9, 29, 111, 111, 29, -9, -3, 0) / 128, which sum to 2 (-> / 256).
# Mirrored: taps -3, -2, -1, 0 land on pixels 4, 3, 2, 1; taps 5, 6 on pixels 4, 3.
DOWN_X2 = [[Fr(29 + 111, 256), Fr(-9 + 111, 256), Fr(-3 + 29, 256), Fr(0 - 9 - 3, 256)]]
DOWN_X2 += [DOWN_X2[0][::-1]]


def as_tensor(rows) -> torch.Tensor:
    return torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float64)


def test_hand_computed_weights():
    torch.testing.assert_close(resize_weights(4, 8, 2.0), as_tensor(UP_X2), rtol=0, atol=1e-15)
    torch.testing.assert_close(resize_weights(4, 2, 0.5), as_tensor(DOWN_X2), rtol=0, atol=1e-15)
    # without antialiasing, downscaling samples the unstretched kernel at u = 1.5 and 3.5: k(1.5) = -1/16,
    # k(0.5) = 9/16, so taps 0..3 get (-1, 9, 9, -1) / 16 and tap 0 mirrors onto pixel 1
    plain = as_tensor([[Fr(8, 16), Fr(9, 16), Fr(-1, 16), 0], [0, Fr(-1, 16), Fr(9, 16), Fr(8, 16)]])
    torch.testing.assert_close(resize_weights(4, 2, 0.5, antialiasing=False), plain, rtol=0, atol=1e-15)


def test_imresize_applies_the_weights_per_axis():
    signal = torch.tensor([[3.0, -1.0, 4.0, 1.5]], dtype=torch.float64)
    up = imresize(signal, scale=(1, 2))
    torch.testing.assert_close(up[0], as_tensor(UP_X2) @ signal[0], rtol=0, atol=1e-12)
    down = imresize(signal.T.contiguous(), scale=(0.5, 1))
    torch.testing.assert_close(down[:, 0], as_tensor(DOWN_X2) @ signal[0], rtol=0, atol=1e-12)
    # 2-D: rows, then columns
    image = torch.arange(16, dtype=torch.float64).reshape(4, 4) ** 1.5
    w = as_tensor(UP_X2)
    torch.testing.assert_close(imresize(image, scale=2), w @ image @ w.T, rtol=0, atol=1e-10)
    assert imresize(image, size=(3, 7)).shape == (3, 7)
    assert imresize(image, scale=0.3).shape == (2, 2)  # ceil(4 * 0.3)


def test_uint8_is_rounded_after_each_axis():
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (2, 3, 12, 10), generator=g, dtype=torch.uint8)
    out = imresize(image, scale=0.5)
    assert out.dtype == torch.uint8
    # MATLAB: height first (equal scales), round half away from zero and clip after each axis
    rows = torch.floor((resize_weights(12, 6, 0.5) @ image.double()).clamp(0, 255) + 0.5)
    both = torch.floor((rows @ resize_weights(10, 5, 0.5).T).clamp(0, 255) + 0.5)
    assert torch.equal(out, both.to(torch.uint8))


@pytest.mark.parametrize("scale", [4, 1 / 4, 3, 1 / 3, 0.7])
def test_constant_images_stay_constant(scale):
    image = torch.full((1, 2, 9, 11), 0.37, dtype=torch.float64)
    torch.testing.assert_close(imresize(image, scale=scale), torch.full_like(imresize(image, scale=scale), 0.37))
    constant = imresize(torch.full((9, 11), 200, dtype=torch.uint8), scale=scale)
    assert torch.equal(constant.unique(), torch.tensor([200], dtype=torch.uint8))


def test_batched_equals_per_image():
    image = torch.rand(3, 2, 10, 13)
    batched = imresize(image, scale=0.25)
    for i in range(3):
        for c in range(2):
            torch.testing.assert_close(batched[i, c], imresize(image[i, c], scale=0.25), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_dtype_and_device_are_kept(dtype):
    image = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    out = imresize(image.to(dtype), scale=2)
    assert out.dtype == dtype and out.device == image.device and out.shape == (1, 3, 16, 16)
    tolerance = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(out.double(), imresize(image, scale=2), rtol=0, atol=tolerance)


def test_bad_arguments():
    with pytest.raises(TypeError, match="torch tensor"):
        imresize(np.zeros((4, 4)), scale=2)
    with pytest.raises(TypeError, match="float or uint8"):
        imresize(torch.zeros(4, 4, dtype=torch.int32), scale=2)
    with pytest.raises(ValueError, match="exactly one of `scale` or `size`"):
        imresize(torch.zeros(4, 4), scale=2, size=(8, 8))
    for scale in (-1, 0, float("nan"), float("inf"), "2", True, (2, 0)):
        with pytest.raises(ValueError, match="`scale` must be a positive finite number"):
            imresize(torch.zeros(4, 4), scale=scale)
    for size in (8, (2.5, 3.7), ("a", "b"), (8,), (8, 0)):
        with pytest.raises(ValueError, match=r"`size` must be \(height, width\) of positive integers"):
            imresize(torch.zeros(4, 4), size=size)
    # numpy numbers are numbers
    assert torch.equal(imresize(torch.ones(4, 4), scale=np.float32(0.5)), imresize(torch.ones(4, 4), scale=0.5))
    assert imresize(torch.ones(4, 4), size=(np.int64(2), 3)).shape == (2, 3)


# ---------------------------------------------------------------------------------------------------------------
# the benchmark LR sets were made with MATLAB's imresize(HR, 1/4, 'bicubic') and saved as uint8
# ---------------------------------------------------------------------------------------------------------------


def load_uint8(path) -> torch.Tensor:
    with PIL.Image.open(path) as image:
        array = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


@pytest.mark.parametrize("name", ["Set14", "BSD100"])
def test_reproduces_benchmark_lr_images(name):
    root = require_dir(DATASETS / name)
    hr_files = sorted((root / "HR").glob("*.png"))
    assert hr_files, f"no HR images in {root / 'HR'}"
    ours, pil = [], []
    for hr_path in hr_files:
        hr = load_uint8(hr_path)
        lr = load_uint8(root / "LR_bicubic" / "X4" / hr_path.name)
        assert hr.shape[0] == lr.shape[0], f"{hr_path.name}: HR and LR channel counts differ"
        mine = imresize(hr, scale=1 / 4)
        assert mine.shape == lr.shape, f"{hr_path.name}: {tuple(mine.shape)} vs {tuple(lr.shape)}"
        ours.append((mine.float() - lr.float()).abs().mean().item())
        with PIL.Image.open(hr_path) as image:
            small = image.resize((lr.shape[2], lr.shape[1]), PIL.Image.Resampling.BICUBIC)
        pil.append((load_uint8_from(small).float() - lr.float()).abs().mean().item())
    assert np.mean(ours) <= 0.05, f"mean abs difference {np.mean(ours):.3f} gray levels"
    assert max(ours) <= 0.15, f"worst image {hr_files[int(np.argmax(ours))].name}: {max(ours):.3f}"
    # PIL's bicubic (no MATLAB antialiasing kernel) is far off: the test can tell the two apart
    assert np.mean(pil) > 0.1, f"PIL bicubic is unexpectedly close ({np.mean(pil):.3f})"


def load_uint8_from(image: PIL.Image.Image) -> torch.Tensor:
    array = np.asarray(image)
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1)
