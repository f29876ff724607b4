#!/usr/bin/env python3
"""The pycocotools side of `strata bench coco`: loading an instances file as COCO(path) does
(json.load of the whole document, then its indexes), and annToMask over the first images.

Usage: bench_coco_pycocotools.py INPUT.json
INPUT: {"annotations": FILE, "labels": N}. The last line of output is a JSON document:
{"load_seconds": ..., "peak_rss": bytes (ru_maxrss), "label_seconds": ..., "labelled_images": ...}
(the convention of apps/strata/python.h).
"""
import json
import resource
import sys
import time

from pycocotools.coco import COCO


def main():
    settings = json.load(open(sys.argv[1]))
    start = time.perf_counter()
    coco = COCO(settings["annotations"])
    load = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    images = sorted(coco.dataset["images"], key=lambda i: i["file_name"])[: settings["labels"]]
    start = time.perf_counter()
    for image in images:
        for ann in coco.imgToAnns[image["id"]]:
            coco.annToMask(ann)
    label = time.perf_counter() - start
    print(json.dumps({"load_seconds": load, "peak_rss": peak, "label_seconds": label, "labelled_images": len(images)}))


if __name__ == "__main__":
    main()
