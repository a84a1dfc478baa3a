"""Reading a subject (data/<ID>/, written by data_utils/process.py) into tensors.

subject_files (the files and their formats), frame_cache (decoded frames and masks at a resolution),
frame_features (per-frame scalars, masks, mouth codes), cameras, dataset (load_subject -> Dataset:
batches for training), sequence (frames in order for rendering), audio_windows (the audio context of a
frame), mouth_features (the audio-to-mouth model's inputs).
May import: utils, data_utils. Nothing of scene.models or scene.training.
"""
