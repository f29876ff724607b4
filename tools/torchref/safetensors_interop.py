"""A file written by the official safetensors library (safetensors.torch.save_file) for strata's
reader: several dtypes, a rank-4 OIHW weight, metadata."""
import torch


def cases():
    tensors = {
        "f32": torch.tensor([1.5, -2.0, 3.25]),
        "i64": torch.tensor([-1, 1 << 33], dtype=torch.int64),
        "u8": torch.tensor([0, 128, 255], dtype=torch.uint8),
        "bf16": torch.tensor([1.0, -0.5], dtype=torch.bfloat16),
        "conv": torch.arange(6, dtype=torch.float32).view(2, 3, 1, 1),
    }
    yield "from_python", tensors, {"written_by": "safetensors.torch"}
