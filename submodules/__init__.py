"""The project's own kernels, each a package with a pure-PyTorch `reference.py` that defines it."""
