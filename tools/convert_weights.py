#!/usr/bin/env python3
"""Converts a PyTorch checkpoint (.pth) into a safetensors file that strata's models load
(models/weights.h), with strata's state-dict names.

Usage: convert_weights.py IN.pth OUT.safetensors [--kind KIND]

Kinds (detected from the keys when --kind is not given):
  torchvision           a torchvision deeplabv3_resnet50/101 state dict (backbone.*, classifier.*,
                        aux_classifier.*): classifier.4.* (the last conv) becomes cls.0.*
  mib                   a MiB/PLOP step checkpoint ({"model_state": ...}, keys with DDP's "module."
                        prefix: body.*, head.*, cls.{i}.*), or its bare state dict
  inplace_abn_imagenet  mapillary/inplace_abn's ImageNet ResNet ({"state_dict": ...}, "module.mod1..",
                        "module.classifier.fc.*"): classifier.fc.* is dropped (as MiB does) and the
                        rest becomes body.* (load it with strata's backbone mode)
  torchvision_imagenet  a torchvision ResNet ImageNet state dict (conv1.*, layer1.* .. fc.*): fc.* is
                        dropped and the rest becomes backbone.* (backbone mode)
  semseg_pspnet         a hszhao/semseg PSPNet checkpoint ({"state_dict": ...}: layer0.* .. layer4.*,
                        ppm.*, cls.*, aux.*), for strata's --arch pspnet:
                          layer{0..4}.*      -> backbone.layer{0..4}.*  (layer0: the deep stem)
                          ppm.features.{i}.* -> head.ppm.features.{i}.*
                          cls.0.*, cls.1.*   -> head.0.*, head.1.*     (the 3x3 conv and its norm)
                          cls.4.*            -> cls.0.*                 (the classifier: step 0)
                          aux.0.*, aux.1.*   -> aux.0.*, aux.1.*
                          aux.4.*            -> aux.cls.0.*             (the aux classifier: step 0)
  deeplabv3plus         a jfzhang95/pytorch-deeplab-xception DeepLabV3+ ResNet checkpoint ({"state_dict":
                        ...}: backbone.*, aspp.*, decoder.*), for strata's --arch deeplabv3plus:
                          backbone.*              -> backbone.*
                          aspp.*                  -> head.aspp.*
                          decoder.last_conv.8.*   -> cls.0.*            (the classifier: step 0)
                          decoder.*               -> head.decoder.*
  bisenet               a CoinCheung/BiSeNet v1 state dict (cp.resnet.*, cp.*, sp.*, ffm.*, conv_out*.*),
                        for strata's --arch bisenet:
                          cp.resnet.*             -> backbone.*
                          cp.*, sp.*, ffm.*       -> head.cp.*, head.sp.*, head.ffm.*
                          conv_out.conv.*         -> head.out.*
                          conv_out.conv_out.*     -> cls.0.*            (the classifier: step 0)
                          conv_out16.conv.*       -> aux16.conv.*,  conv_out16.conv_out.* -> aux16.cls.0.*
                          conv_out32.conv.*       -> aux32.conv.*,  conv_out32.conv_out.* -> aux32.cls.0.*
                        The reference's classifiers have no bias; strata's have one, written as zeros.
Every "module." prefix (DataParallel / DistributedDataParallel) is removed. Floating tensors are
written as float32, integer ones (num_batches_tracked) unchanged, in PyTorch's layouts: strata
converts to its own on load. The file is written to a temporary name and renamed; a failed write
leaves nothing behind.

Run it with the interpreter that has torch and safetensors (the venv of the README set-up). Exits
with status 1 and a message naming the file on anything it cannot convert.
"""
import argparse
import os
import sys

KINDS = ("torchvision", "mib", "inplace_abn_imagenet", "torchvision_imagenet", "semseg_pspnet", "deeplabv3plus",
         "bisenet")

# semseg's PSPNet names -> strata's (the table in the docstring), by prefix.
SEMSEG_PSPNET_PREFIXES = (("layer", "backbone.layer"), ("ppm.", "head.ppm."), ("cls.0.", "head.0."),
                          ("cls.1.", "head.1."), ("cls.4.", "cls.0."), ("aux.0.", "aux.0."), ("aux.1.", "aux.1."),
                          ("aux.4.", "aux.cls.0."))


# The DeepLabV3+ reference's names -> strata's (the table in the docstring), by prefix, first match.
DEEPLABV3PLUS_PREFIXES = (("backbone.", "backbone."), ("aspp.", "head.aspp."), ("decoder.last_conv.8.", "cls.0."),
                          ("decoder.", "head.decoder."))


def deeplabv3plus_name(key):
    """strata's name of a DeepLabV3+ reference key, or None for a key outside the table."""
    for theirs, ours in DEEPLABV3PLUS_PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return None


# CoinCheung/BiSeNet v1's names -> strata's (the table in the docstring), by prefix, first match.
BISENET_PREFIXES = (("cp.resnet.", "backbone."), ("cp.", "head.cp."), ("sp.", "head.sp."), ("ffm.", "head.ffm."),
                    ("conv_out.conv.", "head.out."), ("conv_out.conv_out.", "cls.0."),
                    ("conv_out16.conv.", "aux16.conv."), ("conv_out16.conv_out.", "aux16.cls.0."),
                    ("conv_out32.conv.", "aux32.conv."), ("conv_out32.conv_out.", "aux32.cls.0."))


def bisenet_name(key):
    """strata's name of a BiSeNet v1 key, or None for a key outside the table."""
    for theirs, ours in BISENET_PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return None


def semseg_pspnet_name(key):
    """strata's name of a semseg PSPNet key, or None for a key outside the table."""
    for theirs, ours in SEMSEG_PSPNET_PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return None


class ConversionError(Exception):
    pass


def load_checkpoint(path):
    import torch
    try:
        return torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many types for corrupt files
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def state_dict_of(path, checkpoint):
    """The state dict inside a checkpoint: MiB's "model_state", inplace_abn's "state_dict", or the
    checkpoint itself."""
    import torch
    if not isinstance(checkpoint, dict):
        raise ConversionError(f"{path}: expected a dict (a state dict or a checkpoint), got {type(checkpoint).__name__}")
    for key in ("model_state", "state_dict"):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    if not checkpoint:
        raise ConversionError(f"{path}: the state dict is empty")
    bad = [k for k, v in checkpoint.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{path}: not a state dict: {len(bad)} entries are not named tensors "
                              f"(e.g. {bad[:3]}); top-level keys: {sorted(map(str, checkpoint))[:8]}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in checkpoint.items()}


def detect_kind(path, state):
    keys = list(state)
    def has(prefix):
        return any(k.startswith(prefix) for k in keys)
    if has("layer0.") and has("ppm."):
        return "semseg_pspnet"
    if has("aspp.") and has("decoder."):
        return "deeplabv3plus"
    if has("cp.resnet.") and has("ffm."):
        return "bisenet"
    if has("body.") or has("head.") or has("cls."):
        return "mib"
    if has("backbone.") and has("classifier."):
        return "torchvision"
    if has("mod1.") and has("mod5."):
        return "inplace_abn_imagenet"
    if "conv1.weight" in state and has("layer1."):
        return "torchvision_imagenet"
    raise ConversionError(f"{path}: cannot tell which model these keys belong to (first keys: {keys[:5]}); "
                          f"pass --kind ({', '.join(KINDS)})")


def convert(path, state, kind):
    """Returns (tensors in strata's names, list of dropped keys)."""
    out, dropped = {}, []
    for key, value in state.items():
        if kind == "torchvision":
            name = "cls.0." + key[len("classifier.4."):] if key.startswith("classifier.4.") else key
        elif kind == "mib":
            name = key
        elif kind == "deeplabv3plus":
            name = deeplabv3plus_name(key)
            if name is None:
                raise ConversionError(f"{path}: '{key}' is not a key of the DeepLabV3+ reference (backbone, aspp, "
                                      f"decoder)")
        elif kind == "bisenet":
            name = bisenet_name(key)
            if name is None:
                raise ConversionError(f"{path}: '{key}' is not a key of BiSeNet v1 (cp, sp, ffm, conv_out*)")
        elif kind == "semseg_pspnet":
            name = semseg_pspnet_name(key)
            if name is None:
                raise ConversionError(f"{path}: '{key}' is not a key of semseg's PSPNet (layer0..4, ppm, cls.0/1/4, "
                                      f"aux.0/1/4)")
        elif kind == "inplace_abn_imagenet":
            if key.startswith("classifier."):
                dropped.append(key)
                continue
            name = "body." + key
        else:
            if key.startswith("fc."):
                dropped.append(key)
                continue
            name = "backbone." + key
        out[name] = value.detach().float().contiguous().clone() if value.is_floating_point() else \
            value.detach().contiguous().clone()
    expected_prefix = {"torchvision": "backbone.", "mib": "body.", "inplace_abn_imagenet": "body.",
                       "torchvision_imagenet": "backbone.", "semseg_pspnet": "backbone.",
                       "deeplabv3plus": "backbone.", "bisenet": "backbone."}[kind]
    if kind == "bisenet":
        # strata's classifiers carry a bias the reference's do not have: zeros give the same logits.
        for weight in [k for k in out if k.endswith("cls.0.weight")]:
            bias = weight[:-len("weight")] + "bias"
            if bias not in out:
                out[bias] = out[weight].new_zeros(out[weight].shape[0])
    if not any(k.startswith(expected_prefix) for k in out):
        raise ConversionError(f"{path}: no {expected_prefix}* tensors after converting as '{kind}' "
                              f"(first keys: {list(state)[:5]}): wrong --kind?")
    return out, dropped


def check_output_path(path):
    """The output's folder must exist and the output must not be a folder: said before converting."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConversionError(f"{path}: cannot write: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise ConversionError(f"{path}: cannot write: it is a folder, expected a .safetensors file name")


def write_atomically(path, write):
    """Calls write(tmp) on a temporary name next to `path`, then renames it; on any failure (a full
    disk, a read-only folder; safetensors raises its own error types, not OSError) the temporary file
    is removed and the error names `path`."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except Exception as e:
        raise ConversionError(f"{path}: cannot write ({type(e).__name__}: {e})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="PyTorch checkpoint (.pth, .pth.tar)")
    parser.add_argument("output", help="safetensors file to write")
    parser.add_argument("--kind", choices=KINDS, help="checkpoint kind (default: detected from the keys)")
    args = parser.parse_args(argv)
    try:
        # Checked before importing torch, which takes a second.
        if not os.path.isfile(args.input):
            raise ConversionError(f"{args.input}: no such file")
        check_output_path(args.output)
        from safetensors.torch import save_file
        state = state_dict_of(args.input, load_checkpoint(args.input))
        kind = args.kind or detect_kind(args.input, state)
        tensors, dropped = convert(args.input, state, kind)
        metadata = {"format": "strata segmentation model", "converted_from": os.path.basename(args.input),
                    "kind": kind}
        write_atomically(args.output, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    except ConversionError as e:
        print(f"convert_weights.py: error: {e}", file=sys.stderr)
        return 1
    renamed = " (classifier.4 -> cls.0)" if kind == "torchvision" else ""
    print(f"convert_weights.py: {args.input} -> {args.output}: {len(tensors)} tensors, kind {kind}{renamed}"
          + (f", dropped {len(dropped)}: {' '.join(dropped)}" if dropped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
