"""SRDiffImageProcessor: every input type in, the same form back out, against values computed here by hand."""

import numpy as np
import PIL.Image
import pytest
import torch

from srdiff_diffusers.image_processor import SRDiffImageProcessor

processor = SRDiffImageProcessor()
RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def round_trip(image, output_type="pil"):
    (item,) = processor.preprocess(image)
    return item, processor.postprocess(item.rgb, output_type, like=item, do_denormalize=False)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P"])
def test_pil_images_come_back_in_their_mode_and_values(mode):
    image = PIL.Image.fromarray(RGB8).convert(mode)
    item, (back,) = round_trip(image)
    assert item.rgb.shape == (1, 3, 5, 7) and item.rgb.dtype == torch.float32
    assert back.mode == mode
    if mode in ("RGB", "RGBA", "P"):  # exact; gray goes through RGB and back by ITU-R 601 luma
        np.testing.assert_array_equal(np.asarray(back), np.asarray(image))
    else:
        assert np.abs(np.asarray(back).astype(int) - np.asarray(image).astype(int)).max() <= 1


def test_values_are_uint8_over_255_and_back():
    (item,) = processor.preprocess(RGB8)
    expected = torch.from_numpy(RGB8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    torch.testing.assert_close(item.rgb, expected, rtol=0, atol=0)
    back = processor.postprocess(processor.normalize(item.rgb), "np", like=item)
    assert back.shape == (1, 5, 7, 3)
    np.testing.assert_array_equal(processor.numpy_to_uint8(back[0]), RGB8)


def test_batches_lists_and_torch():
    batch = np.stack([RGB8, RGB8[::-1]])
    items = processor.preprocess([batch, torch.from_numpy(RGB8).permute(2, 0, 1)])
    assert len(items) == 3 and [item.kind for item in items] == ["np", "np", "pt"]
    torch.testing.assert_close(items[2].rgb, items[0].rgb, rtol=0, atol=0)


def test_cmyk_and_one_bit_are_converted():
    cmyk = PIL.Image.fromarray(RGB8).convert("CMYK")
    (item,) = processor.preprocess(cmyk)
    expected = np.asarray(cmyk.convert("RGB")).astype(np.float32) / 255
    np.testing.assert_array_equal(item.rgb[0].permute(1, 2, 0).numpy(), expected)
    (bit,) = processor.preprocess(PIL.Image.fromarray(RGB8[:, :, 0]).convert("1"))
    assert bit.mode == "L" and set(bit.rgb.unique().tolist()) <= {0.0, 1.0}


def test_static_conversions():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert processor.normalize(x).tolist() == [-1.0, 0.0, 1.0]
    assert processor.denormalize(processor.normalize(x)).tolist() == x.tolist()
    assert processor.to_uint8(torch.tensor([-0.1, 0.5, 1.2])).tolist() == [0, 128, 255]
    assert processor.numpy_to_uint16(np.array([0.0, 0.5, 1.0])).tolist() == [0, 32768, 65535]
    pt = processor.numpy_to_pt(RGB8)
    assert pt.shape == (1, 3, 5, 7) and pt.dtype == torch.uint8
    np.testing.assert_array_equal(processor.pt_to_numpy(pt)[0], RGB8)
    sixteen = PIL.Image.fromarray(np.full((2, 2), 128 * 257, np.uint16))  # 128 in 8 bits
    assert processor.to_rgb8_array(sixteen).tolist() == [[[128] * 3] * 2] * 2  # rounded, not clipped to white
    with pytest.raises(ValueError, match="mode 'F'"):
        processor.to_rgb8(PIL.Image.new("F", (2, 2)))


def test_masks():
    mask = processor.preprocess_mask(np.array([[0, 255]], np.uint8), 1, 2)
    assert mask.shape == (1, 1, 1, 2) and mask.flatten().tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="HR images are"):
        processor.preprocess_mask(np.zeros((2, 2), bool), 1, 2)
