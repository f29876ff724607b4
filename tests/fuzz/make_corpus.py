#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Each corpus holds a handful of small valid inputs and near-valid ones (one field wrong), so the
fuzzer starts from the formats' structure. The output is deterministic; re-run after changing a
seed here (Debian's python3 with python3-pil):

    /usr/bin/python3 tests/fuzz/make_corpus.py

Inputs that once made a target fail are added to the corpus by hand as crash-<what> files (the
script never deletes files), so every ctest run replays them.
"""
import io
import json
import struct
from pathlib import Path

from PIL import Image

CORPUS = Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


# ---- safetensors -------------------------------------------------------------------------------

def safetensors(tensors, metadata=None, header_override=None, pad=True):
    """tensors: [(name, dtype, shape, bytes)] laid out in order."""
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(payload)]}
        data += payload
        offset += len(payload)
    text = header_override if header_override is not None else json.dumps(header, separators=(",", ":"))
    if pad:
        text += " " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text.encode())) + text.encode() + data


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


def safetensors_corpus():
    t = "fuzz_safetensors"
    write(t, "two_tensors", safetensors([("bias", "F32", [2], f32(1, 2)), ("w", "F32", [2, 3], f32(*range(6)))]))
    write(t, "conv_rank4", safetensors([("conv.weight", "F32", [2, 1, 2, 2], f32(*range(8)))]))
    write(t, "dtypes", safetensors([("a", "F64", [1], struct.pack("<d", 0.5)), ("b", "BF16", [2], b"\x80\x3f" * 2),
                                    ("c", "F16", [1], b"\x00\x3c"), ("d", "U8", [3], b"\x01\x02\x03"),
                                    ("e", "I32", [1], struct.pack("<i", -7)), ("f", "I64", [1], struct.pack("<q", 9))]))
    write(t, "metadata_and_empty", safetensors([("empty", "F32", [0, 4], b""), ("s", "I64", [], struct.pack("<q", 3))],
                                               metadata={"format": "pt", "step": "1"}))
    write(t, "no_tensors", safetensors([], metadata={}))
    valid = safetensors([("w", "F32", [2, 2], f32(1, 2, 3, 4))])
    write(t, "near_truncated", valid[:-3])
    write(t, "near_overlap", safetensors([], header_override='{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                                                              '"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}')
          + b"abc")
    write(t, "near_bad_dtype", safetensors([("w", "Q4", [1], b"\x00")]))
    write(t, "near_huge_shape", safetensors([], header_override='{"w":{"dtype":"F32","shape":[4294967296,4294967296],'
                                                                 '"data_offsets":[0,0]}}'))
    write(t, "near_header_length", struct.pack("<Q", 1 << 40) + b"{}")


# ---- JSON --------------------------------------------------------------------------------------

def json_corpus():
    t = "fuzz_json"
    write(t, "checkpoint_metadata", '{"step":1,"task":"15-5","classes":[[0,1,2],[16,17]],"lr":0.001,"done":true,'
                                    '"note":null}')
    write(t, "log_record", '{"iteration":120,"loss":{"ce":0.693,"kd":"nan","de":"-inf"},"lr":9.5e-3,"epoch":-1}')
    write(t, "strings", '["plain","esc\\"\\\\\\/\\b\\f\\n\\r\\t","\\u00e9\\u4e2d","\\ud83d\\ude00","caf\u00e9"]')
    write(t, "numbers", '[0,-0,1.5,-2e-3,1E+2,9223372036854775807,-9223372036854775808,18446744073709551616,1e400]')
    write(t, "nested", '{"a":[{"b":[[],{}]},[[[1]]]],"":{" ":" "}}')
    write(t, "whitespace", ' \t\r\n{ "k" : [ 1 , 2 ] } \n')
    write(t, "near_trailing_comma", '{"a":[1,2,],}')
    write(t, "near_lone_surrogate", '["\\ud800x"]')
    write(t, "near_deep", "[" * 70 + "]" * 70)
    write(t, "near_leading_zero", '[01]')


# ---- images and label maps -----------------------------------------------------------------------

def voc_color(index):
    r = g = b = 0
    c = index
    for j in range(8):
        r |= ((c >> 0) & 1) << (7 - j)
        g |= ((c >> 1) & 1) << (7 - j)
        b |= ((c >> 2) & 1) << (7 - j)
        c >>= 3
    return (r, g, b)


def encoded(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photo(size=(12, 8)):
    image = Image.new("RGB", size)
    image.putdata([((x * 37) % 256, (y * 53) % 256, (x * y * 11) % 256) for y in range(size[1]) for x in range(size[0])])
    return image


def labels(values, size=(12, 8)):
    image = Image.new("L", size)
    image.putdata([values[(x // 3 + y // 2) % len(values)] for y in range(size[1]) for x in range(size[0])])
    return image


def image_corpus():
    t = "fuzz_image"
    write(t, "photo.jpg", encoded(photo(), "JPEG", quality=75))
    write(t, "photo_progressive.jpg", encoded(photo(), "JPEG", quality=60, progressive=True))
    write(t, "photo_grey.jpg", encoded(photo().convert("L"), "JPEG", quality=70))
    write(t, "photo_subsampled.jpg", encoded(photo((17, 9)), "JPEG", quality=50, subsampling=2))
    write(t, "photo.png", encoded(photo(), "PNG"))
    write(t, "photo_rgba.png", encoded(photo().convert("RGBA"), "PNG"))
    write(t, "label_voc_grey.png", encoded(labels([0, 1, 15, 20, 255]), "PNG"))
    write(t, "label_ade_grey.png", encoded(labels([0, 12, 150]), "PNG"))
    write(t, "label_cityscapes_ids.png", encoded(labels([7, 8, 26, 33, 0]), "PNG"))
    palette = labels([0, 1, 5, 20, 255]).convert("P")
    flat = []
    for i in range(256):
        flat.extend(voc_color(i))
    palette.putpalette(flat)
    write(t, "label_voc_palette.png", encoded(palette, "PNG"))
    rgb = Image.new("RGB", (6, 4))
    rgb.putdata([voc_color([0, 3, 15, 255][(x + y) % 4]) for y in range(4) for x in range(6)])
    write(t, "label_voc_rgb.png", encoded(rgb, "PNG"))
    write(t, "near_label_out_of_range.png", encoded(labels([0, 21, 151, 200]), "PNG"))
    odd = rgb.copy()
    odd.putpixel((2, 1), (1, 2, 3))
    write(t, "near_label_colour_not_voc.png", encoded(odd, "PNG"))
    write(t, "near_label_16bit.png", encoded(labels([0, 1]).convert("I;16"), "PNG"))
    write(t, "near_label_grey_alpha.png", encoded(labels([0, 1]).convert("LA"), "PNG"))
    write(t, "near_truncated.jpg", encoded(photo(), "JPEG", quality=75)[:-40])
    write(t, "near_truncated.png", encoded(photo(), "PNG")[:-20])


# ---- list files ----------------------------------------------------------------------------------

def list_corpus():
    t = "fuzz_list"
    write(t, "deeplab_list", "/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png\n"
                             "/JPEGImages/2007_000039.jpg /SegmentationClassAug/2007_000039.png\n")
    write(t, "imagesets_ids", "2007_000032\n2007_000039\n\n2007_000063\n")
    write(t, "crlf_and_tabs", "2007_000032\r\n\t/JPEGImages/a.jpg\t/SegmentationClass/a.png \r\n")
    write(t, "class_names", "background\naeroplane\nbicycle\n  bird  \n\n")
    write(t, "near_three_fields", "/JPEGImages/a.jpg /SegmentationClassAug/a.png extra\n")
    write(t, "near_one_class_name", "background\n")


# ---- task strings --------------------------------------------------------------------------------

def task_corpus():
    t = "fuzz_task"
    tasks = {"voc_15-5": "15-5", "voc_15-1": "15-1", "voc_19-1b": "19-1b", "voc_15-5s_b": "15-5s_b",
             "voc_15-1_w": "15-1_w", "voc_10-5-5": "10-5-5", "voc_5-3": "5-3", "ade_100-50b": "100-50b",
             "ade_100-10c": "100-10c", "ade_50": "50", "offline": "offline", "split_10-2-2-2": "10-2-2-2",
             "split_3-2": "3-2", "class_lists": "0..10/11,12/13..15", "class_lists_spaces": " 1..5 / 6 , 7 / 8..10 ",
             "near_empty_last_step": "0..3/", "near_negative_range": "-1..3", "near_step_of_0": "10-0",
             "near_huge_class": "1..4294967296"}
    for name, text in tasks.items():
        write(t, name, text)


# ---- command lines -------------------------------------------------------------------------------

def options_corpus():
    t = "fuzz_options"
    lines = {
        "mib_step1": ["--data-root", "data", "--task", "15-5", "--step", "1", "--overlap", "--method", "MiB"],
        "recipe": ["--lr", "0.01,0.001", "--epochs", "30,30", "--batch-size", "24", "--crop-size", "512",
                   "--seed", "42"],
        "model": ["--backbone", "small", "--blocks", "1,1,1,1", "--width", "16", "--head-channels", "64",
                  "--output-stride", "8", "--norm", "batch_norm", "--pooling", "0"],
        "terms": ["--loss-kd", "10", "--unkd", "--unce", "--init-balanced", "--alpha", "1.5", "--loss-de", "100"],
        "run": ["--step", "all", "--protocol", "disjoint", "--convention", "mib", "--ckpt-interval", "50",
                "--stop-after", "3", "--val-interval", "1", "--eval-batch-size", "4", "--no-progress"],
        "help": ["--data-root", "x", "--help"],
        "near_zero_batch": ["--batch-size", "0"],
        "near_missing_value": ["--task"],
        "near_overflow": ["--epochs", "99999999999999999999", "--seed", "-1"],
    }
    for name, args in lines.items():
        write(t, name, "\n".join(args))
    write(t, "nul_separated", "\0".join(["--device", "cuda:0", "--workers", "2", "--lr", "1e-3"]))
    joined = ["--data-root=data", "--step=1", "--lr=0.01", "--overlap=1", "--task="]
    write(t, "joined_values", "\n".join(joined))


# ---- COCO annotation files -----------------------------------------------------------------------

def coco_corpus():
    t = "fuzz_coco"
    images = [{"id": 1, "file_name": "a.jpg", "height": 12, "width": 16},
              {"id": 2, "file_name": "b.jpg", "height": 9, "width": 7}]
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]
    annotations = [
        {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": [[1.5, 1.0, 9.0, 2.0, 8.0, 10.5, 2.0, 9.0]]},
        {"id": 11, "image_id": 1, "category_id": 18, "iscrowd": 0,
         "segmentation": [[4, 4, 14, 4, 14, 11, 9, 6, 4, 11], [0, 0, 3, 0, 0, 3]]},
        {"id": 12, "image_id": 1, "category_id": 3, "iscrowd": 1,
         "segmentation": {"size": [12, 16], "counts": [20, 5, 11, 5, 151]}},
        {"id": 13, "image_id": 2, "category_id": 3, "iscrowd": 0,
         "segmentation": {"size": [9, 7], "counts": "52203"}},
    ]
    valid = {"images": images, "annotations": annotations, "categories": categories}
    write(t, "valid", json.dumps(valid))
    write(t, "empty_lists", json.dumps({"images": [], "annotations": [], "categories": []}))
    near = json.loads(json.dumps(valid))
    near["annotations"][0]["category_id"] = 2
    write(t, "near_unknown_category", json.dumps(near))
    near = json.loads(json.dumps(valid))
    near["annotations"][2]["segmentation"]["counts"] = [20, 5, 11, 5, 999]
    write(t, "near_rle_too_long", json.dumps(near))
    near = json.loads(json.dumps(valid))
    near["images"][1]["height"] = 0
    write(t, "near_zero_height", json.dumps(near))
    write(t, "near_truncated", json.dumps(valid)[:-30])


if __name__ == "__main__":
    safetensors_corpus()
    json_corpus()
    image_corpus()
    list_corpus()
    task_corpus()
    options_corpus()
    coco_corpus()
