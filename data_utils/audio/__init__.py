"""Audio features aligned to 25 fps video: decoding, extractors, windowing and the feature files.

Public API (also re-exported by `data_utils/audio_features.py`, the CLI):
`load_audio`, `extract_features`, `AudioFeatures`, `save_features`, `load_features`,
`feature_path`, `run_audio_features`, `EXTRACTORS`.
"""
from data_utils.audio.decode import FPS, SAMPLE_RATE, load_audio, n_video_frames
from data_utils.audio.errors import MissingModelError
from data_utils.audio.extract import extract_features, run_audio_features
from data_utils.audio.features import AudioFeatures, feature_path, load_features, save_features
from data_utils.audio.registry import EXTRACTORS, POSTFIXES, Extractor

__all__ = ["FPS", "SAMPLE_RATE", "load_audio", "n_video_frames", "MissingModelError", "extract_features",
           "run_audio_features", "AudioFeatures", "feature_path", "load_features", "save_features",
           "EXTRACTORS", "POSTFIXES", "Extractor"]
