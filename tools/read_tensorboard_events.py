#!/usr/bin/env python3
"""Reads a TensorBoard event file with the tensorboard package's own reader (EventFileLoader) and
prints what it holds, one line per record: "version <file_version>", "scalar <step> <tag> <value>
<wall_time>" or "image <step> <tag> <height> <width> <decoded width>x<decoded height> <mode>" (the
encoded image decoded by PIL), then "records <n>". strata's tests compare that with what they wrote (tests/engine/test_event_file.cpp).
Exits non-zero if the reader raises before the end of the file."""
import io
import sys

from PIL import Image

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util


def main(path):
    count = 0
    for event in EventFileLoader(path).Load():
        count += 1
        if event.HasField("file_version"):
            print(f"version {event.file_version}")
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "images":
                # The loader migrates image summaries to the images plugin's tensor [width, height, encoded].
                width, height, encoded = value.tensor.string_val
                decoded = Image.open(io.BytesIO(encoded))
                print(f"image {event.step} {value.tag} {int(height)} {int(width)} "
                      f"{decoded.width}x{decoded.height} {decoded.mode}")
                continue
            # The loader migrates legacy simple_value scalars to scalar tensors, as TensorBoard shows them.
            number = tensor_util.make_ndarray(value.tensor).item() if value.HasField("tensor") else value.simple_value
            print(f"scalar {event.step} {value.tag} {number!r} {event.wall_time!r}")
    print(f"records {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
