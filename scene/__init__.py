"""Scene: everything between a processed subject folder and a trained model, in three layers.

    scene.data      reading a subject: frames, masks, cameras, per-frame features, audio windows
    scene.models    what is trained: Gaussians, motion nets, the audio-to-mouth model, the fused renderer
    scene.training  how: the stages (losses, masks), schedules, frame sampling, densification, the loop

Imports flow one way: data <- models <- training (tests/test_layering.py checks it).
"""
