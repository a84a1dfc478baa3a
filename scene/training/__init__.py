"""Training the models on a subject: the stages, their schedules and the loop.

stages (mouth, face, fuse: one step each, with the paper's masks and losses), schedule (upstream's
iteration schedules, scaled to a run), sampling (which frame each step sees), densify (adding and
pruning Gaussians), trainer (the loop: checkpoints, resume, logging, the lips stage).
May import: utils, data_utils, arguments, submodules, gaussian_renderer, scene.data, scene.models.
"""
