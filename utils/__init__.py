"""Small stateless helpers by topic: losses, images, cameras, IO. No argparse here.

The bottom layer: imports nothing of the project's other packages (tests/test_layering.py).
"""
