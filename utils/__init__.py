"""Small stateless helpers by topic: losses, images, cameras, IO. No argparse here."""
