"""Errors the audio extractors raise for things the user has to supply."""
from __future__ import annotations


class MissingModelError(RuntimeError):
    """An optional extractor lacks its weights or its optional package; the message says what to do."""
