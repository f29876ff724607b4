#!/usr/bin/env python3
"""An instances file of COCO train2017's size and shape, for measuring readers (`strata bench coco`).

usage: coco_annotations_like_train2017.py OUT [--images 118287] [--annotations 860001]

COCO's 80 categories (ids 1..90 with gaps); images of 640 x 360..640; per annotation one polygon
(one in ten: two) of 6..46 vertices around a centre, coordinates with two decimals as in COCO,
"area" and "bbox"; one in a hundred a crowd region as an uncompressed RLE. With the defaults the
file is about 450 MB (instances_train2017.json: 448 MB, 118,287 images, 860,001 annotations).
Deterministic (seed 0).
"""
import argparse
import json
import math

import numpy as np

IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def polygon(rng, w, h):
    n = int(rng.integers(6, 47))
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    radius = rng.uniform(5, 120)
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = radius * rng.uniform(0.5, 1.0, n)
    xs = np.clip(cx + radii * np.cos(angles), 0, w - 0.01)
    ys = np.clip(cy + radii * np.sin(angles), 0, h - 0.01)
    xy = np.empty(2 * n)
    xy[0::2], xy[1::2] = xs, ys
    return "[" + ",".join(f"{v:.2f}" for v in xy) + "]"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--images", type=int, default=118287)
    parser.add_argument("--annotations", type=int, default=860001)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sizes = []
    with open(args.out, "w") as f:
        f.write('{"info": {"description": "shaped like COCO 2017 train"}, "licenses": [], "images": [')
        for i in range(args.images):
            h = int(rng.integers(360, 641))
            sizes.append(h)
            image = {"license": 1, "file_name": f"{i + 1:012d}.jpg", "coco_url": "", "height": h, "width": 640,
                     "date_captured": "2013-11-14 17:02:52", "flickr_url": "", "id": i + 1}
            f.write(("," if i else "") + json.dumps(image))
        f.write('], "annotations": [')
        for k in range(args.annotations):
            image = int(rng.integers(0, args.images))
            h, w = sizes[image], 640
            crowd = k % 100 == 99
            if crowd:
                counts, total = [], h * w
                start = int(rng.integers(0, total // 2))
                counts.append(start)
                left = total - start
                for _ in range(int(rng.integers(20, 200))):
                    run = int(rng.integers(1, 300))
                    if run >= left:
                        break
                    counts.append(run)
                    left -= run
                counts.append(left)
                segmentation = json.dumps({"counts": counts, "size": [h, w]})
            else:
                parts = [polygon(rng, w, h) for _ in range(2 if k % 10 == 0 else 1)]
                segmentation = "[" + ",".join(parts) + "]"
            bbox = [round(float(v), 2) for v in rng.uniform(0, 300, 4)]
            f.write(("," if k else "") + f'{{"segmentation": {segmentation}, "area": {rng.uniform(10, 40000):.3f}, '
                    f'"iscrowd": {int(crowd)}, "image_id": {image + 1}, "bbox": {json.dumps(bbox)}, '
                    f'"category_id": {IDS[k % 80]}, "id": {k + 1}}}')
        categories = [{"supercategory": "thing", "id": c, "name": f"category {c}"} for c in IDS]
        f.write('], "categories": ' + json.dumps(categories) + "}")


if __name__ == "__main__":
    main()
