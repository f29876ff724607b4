"""Data transforms as MiB/PLOP run them: Pillow resampling through torchvision.transforms.functional.

Cases (all tensors uint8; images rank-3 HWC, labels rank-2 HW, so the loader keeps their layout):
  resize_<n>: crop box of an image and a label map resized with F.resized_crop (crop, then
              Pillow BILINEAR for the image, NEAREST for the label): enlarging, shrinking (the
              antialiased path), mixed, one axis unchanged, odd and tiny sizes, a VOC-size crop.
  eval_<n>:   F.resize(shorter side -> crop) then F.center_crop(crop), the eval transform.
Params: the box (top, left, height, width) and output size, or the crop size.
"""
import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image

from .common import seed_for

# (src_h, src_w, top, left, box_h, box_w, out_h, out_w)
RESIZE_CASES = [
    (37, 53, 0, 0, 37, 53, 64, 64),        # enlarge both axes
    (97, 131, 0, 0, 97, 131, 40, 50),      # shrink (antialiased triangle of support > 1)
    (100, 100, 0, 0, 100, 100, 33, 177),   # shrink one axis, enlarge the other
    (375, 500, 10, 20, 201, 303, 512, 512),  # a RandomResizedCrop box of a VOC-size image
    (5, 7, 0, 0, 5, 7, 3, 11),             # tiny, odd
    (64, 48, 3, 5, 50, 40, 50, 96),        # height unchanged: horizontal pass only
    (50, 40, 0, 2, 50, 37, 25, 37),        # width unchanged: vertical pass only
    (200, 300, 7, 9, 190, 290, 17, 23),    # strong shrink (factor ~12)
    (120, 90, 30, 10, 61, 47, 128, 128),   # enlarge an odd box by a non-integer factor
    (48, 64, 0, 0, 48, 64, 72, 96),        # factor exactly 1.5 (nearest rounding ties)
]

# (src_h, src_w, crop)
EVAL_CASES = [
    (375, 500, 321),  # landscape, shrink; centre offset (428-321)/2 = 53.5 rounds to even
    (500, 333, 256),  # portrait, shrink
    (90, 161, 128),   # enlarge
    (64, 64, 64),     # unchanged
]


def test_image(name, h, w):
    """Smooth structure plus noise, so every filter weight and rounding path is exercised."""
    rng = np.random.default_rng(seed_for(name))
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], axis=-1)
    noise = rng.integers(-40, 41, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def test_label(name, h, w):
    rng = np.random.default_rng(seed_for(name + "/label"))
    lab = rng.integers(0, 21, size=(h, w)).astype(np.uint8)
    lab[rng.random((h, w)) < 0.05] = 255
    return lab


def cases():
    for n, (sh, sw, top, left, bh, bw, oh, ow) in enumerate(RESIZE_CASES):
        name = f"resize_{n}"
        img = test_image(name, sh, sw)
        lab = test_label(name, sh, sw)
        pil_img = Image.fromarray(img, mode="RGB")
        pil_lab = Image.fromarray(lab, mode="L")
        out_img = F.resized_crop(pil_img, top, left, bh, bw, [oh, ow], F.InterpolationMode.BILINEAR)
        out_lab = F.resized_crop(pil_lab, top, left, bh, bw, [oh, ow], F.InterpolationMode.NEAREST)
        tensors = {
            "image": torch.from_numpy(img),
            "label": torch.from_numpy(lab),
            "out_image": torch.from_numpy(np.asarray(out_img).copy()),
            "out_label": torch.from_numpy(np.asarray(out_lab).copy()),
        }
        params = {"top": top, "left": left, "height": bh, "width": bw, "out_h": oh, "out_w": ow}
        yield name, tensors, params
    for n, (sh, sw, crop) in enumerate(EVAL_CASES):
        name = f"eval_{n}"
        img = test_image(name, sh, sw)
        lab = test_label(name, sh, sw)
        pil_img = Image.fromarray(img, mode="RGB")
        pil_lab = Image.fromarray(lab, mode="L")
        out_img = F.center_crop(F.resize(pil_img, crop, F.InterpolationMode.BILINEAR), crop)
        out_lab = F.center_crop(F.resize(pil_lab, crop, F.InterpolationMode.NEAREST), crop)
        tensors = {
            "image": torch.from_numpy(img),
            "label": torch.from_numpy(lab),
            "out_image": torch.from_numpy(np.asarray(out_img).copy()),
            "out_label": torch.from_numpy(np.asarray(out_lab).copy()),
        }
        yield name, tensors, {"crop": crop}
