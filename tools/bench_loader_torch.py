#!/usr/bin/env python3
"""The PyTorch side of `strata bench loader`: decode + augment throughput of the MiB/PLOP training
pipeline (SPEC-continual.md §4.4) on the same files strata reads.

Per sample: PIL decode of the JPEG image (.convert("RGB")) and the PNG label, torchvision
RandomResizedCrop.get_params(scale=(0.5, 2.0), ratio=(3/4, 4/3)), F.resized_crop of the image
(BILINEAR) and the label (NEAREST) to crop x crop, horizontal flip with p=0.5, and conversion to
uint8 numpy arrays (no ToTensor/Normalize: strata's loader also stops at uint8).

Usage: bench_loader_torch.py INPUT.json
INPUT: {"root": DIR, "list": "splits/train_aug.txt", "crop": 512, "workers": 1, "min_seconds": 2}.
workers 1 runs in this process; N > 1 uses a multiprocessing pool of N processes (the DataLoader's
worker model). The last line of output is a JSON document:
{"images_per_s": ..., "images": ..., "seconds": ..., "torch": ..., "torchvision": ..., "pillow": ...}
(the convention of apps/strata/python.h).
"""
import json
import multiprocessing as mp
import os
import random
import sys
import time

import numpy as np
import torch
import PIL
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

CROP = 512
RRC = None


def init(crop):
    global CROP, RRC
    torch.set_num_threads(1)
    CROP = crop
    RRC = T.RandomResizedCrop(crop, scale=(0.5, 2.0), ratio=(3.0 / 4.0, 4.0 / 3.0))


def load(pair):
    image_path, label_path = pair
    img = Image.open(image_path).convert("RGB")
    lbl = Image.open(label_path)
    lbl.load()
    i, j, h, w = RRC.get_params(img, RRC.scale, RRC.ratio)
    img = F.resized_crop(img, i, j, h, w, [CROP, CROP], F.InterpolationMode.BILINEAR)
    lbl = F.resized_crop(lbl, i, j, h, w, [CROP, CROP], F.InterpolationMode.NEAREST)
    if random.random() < 0.5:
        img = F.hflip(img)
        lbl = F.hflip(lbl)
    a = np.asarray(img, dtype=np.uint8)
    b = np.asarray(lbl, dtype=np.uint8)
    return a.shape[0] + b.shape[0]


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        config = json.load(f)
    root = config["root"]
    list_file = config.get("list", "splits/train_aug.txt")
    crop = int(config.get("crop", 512))
    workers = int(config.get("workers", 1))
    min_seconds = float(config.get("min_seconds", 2.0))

    pairs = []
    with open(os.path.join(root, list_file)) as f:
        for line in f:
            cols = line.split()
            if len(cols) == 2:
                pairs.append(tuple(os.path.join(root, c.lstrip("/")) for c in cols))
    if not pairs:
        print(f"bench_loader_torch.py: no samples in {list_file}", file=sys.stderr)
        return 2
    random.seed(0)
    torch.manual_seed(0)
    init(crop)

    if workers <= 1:
        run = lambda items: [load(p) for p in items]  # noqa: E731
        pool = None
    else:
        pool = mp.get_context("fork").Pool(workers, initializer=init, initargs=(crop,))
        run = lambda items: pool.map(load, items, chunksize=4)  # noqa: E731
    run(pairs[: max(4, workers * 4)])  # warm-up: imports, pool start, file cache

    images, start = 0, time.perf_counter()
    while True:
        run(pairs)
        images += len(pairs)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    if pool is not None:
        pool.close()
        pool.join()
    print(json.dumps({"images_per_s": images / elapsed, "images": images, "seconds": elapsed,
                      "torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
