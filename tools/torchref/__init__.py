"""Groups of PyTorch reference cases; see tools/torch_reference.py."""
