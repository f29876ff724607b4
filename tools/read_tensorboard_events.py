#!/usr/bin/env python3
"""Reads a TensorBoard event file with the tensorboard package's own reader (EventFileLoader) and
prints what it holds, one line per record: "version <file_version>" or "scalar <step> <tag> <value>",
then "records <n>". strata's tests compare that with what they wrote (tests/engine/test_event_file.cpp).
Exits non-zero if the reader raises before the end of the file."""
import sys

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util


def main(path):
    count = 0
    for event in EventFileLoader(path).Load():
        count += 1
        if event.HasField("file_version"):
            print(f"version {event.file_version}")
        for value in event.summary.value:
            # The loader migrates legacy simple_value scalars to scalar tensors, as TensorBoard shows them.
            number = tensor_util.make_ndarray(value.tensor).item() if value.HasField("tensor") else value.simple_value
            print(f"scalar {event.step} {value.tag} {number!r} {event.wall_time!r}")
    print(f"records {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
