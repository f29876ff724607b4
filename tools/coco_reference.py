"""pycocotools' masks for strata's COCO tests (tests/data/test_coco.cpp).

usage: coco_reference.py ANNOTATIONS OUT

Writes to OUT, for every annotation in file order, b"A" + (annotation id: int64, height, width:
int32) + annToMask's mask as height*width bytes (row-major); then for every image, sorted by file
name, b"S" + (image id, height, width) + the semantic label map built from those masks by the rule
data/coco.h states (crowd regions 255 first, then the other instances from the largest mask area to
the smallest, equal areas by ascending id; categories 1..N by ascending category id).
"""
import struct
import sys

import numpy as np
from pycocotools.coco import COCO


def main():
    annotations, out = sys.argv[1], sys.argv[2]
    coco = COCO(annotations)
    label_of = {c: k + 1 for k, c in enumerate(sorted(coco.getCatIds()))}
    with open(out, "wb") as f:
        masks = {}
        for ann in coco.dataset["annotations"]:
            image = coco.imgs[ann["image_id"]]
            mask = coco.annToMask(ann).astype(np.uint8)
            assert mask.shape == (image["height"], image["width"])
            masks[ann["id"]] = mask
            f.write(b"A" + struct.pack("<qii", ann["id"], *mask.shape) + mask.tobytes())
        for image in sorted(coco.dataset["images"], key=lambda i: i["file_name"]):
            label = np.zeros((image["height"], image["width"]), np.uint8)
            anns = coco.imgToAnns[image["id"]]
            order = sorted(anns, key=lambda a: (not a["iscrowd"], -int(masks[a["id"]].sum()), a["id"]))
            for ann in order:
                label[masks[ann["id"]] == 1] = 255 if ann["iscrowd"] else label_of[ann["category_id"]]
            f.write(b"S" + struct.pack("<qii", image["id"], *label.shape) + label.tobytes())


if __name__ == "__main__":
    main()
