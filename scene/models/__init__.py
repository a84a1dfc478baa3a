"""What is trained and rendered: the Gaussian fields and the networks that move them.

gaussian_model (Gaussians and their optimiser groups), audio_net (audio encoder + attention),
motion_net (face / mouth motion nets: one `deform` call), audio_to_mouth (audio -> mouth codes, with its
fit), fused_renderer (a trained model folder -> frames).
May import: utils, data_utils, submodules, gaussian_renderer, scene.data. Nothing of scene.training.
"""
