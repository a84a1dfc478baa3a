"""Optional paper-faithful backends that need user-supplied weights or packages.

Each loads lazily and fails with one line naming the missing file and where it goes.
"""
