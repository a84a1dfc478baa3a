"""The stage rules that carry the paper's fidelity, on hand-written 4x4 masks (scene/training/stages.py).

Each rule was broken on purpose once to see a test here fail (then restored):

| mutation (scene/training/stages.py, scene/training/schedule.py)              | tests that failed                                              |
|------------------------------------------------------------|----------------------------------------------------------------|
| mouth_dont_care: box XOR mouth -> box OR mouth             | test_mouth_dont_care_is_lips_box_xor_mouth, test_mouth_supervision_exact |
| mouth_dont_care: box XOR mouth -> box                      | the two above, test_mouth_step_wires_the_masks                 |
| mouth_supervision: target bg -> black (green mouth target) | test_mouth_supervision_exact, test_green_mouth_target, test_mouth_step_wires_the_masks |
| GREEN = (0, 1, 0) -> (0, 0, 0)                             | test_green_mouth_target, test_mouth_background_turns_black_in_the_tail_only, test_mouth_step_wires_the_masks, test_face_step_wires_the_masks |
| mouth_background: black tail -> green tail                 | test_mouth_background_turns_black_in_the_tail_only, test_mouth_step_wires_the_masks |
| mouth_step: mask "mouth" -> "teeth"                        | test_mouth_step_wires_the_masks                                |
| face_supervision: mouth not blanked in the target          | test_face_supervision_exact, test_face_step_wires_the_masks    |
| face_supervision: hair painted in the target only          | test_face_supervision_exact, test_face_step_wires_the_masks    |
| face_supervision: face_only -> face mask                   | test_face_supervision_exact, test_face_step_wires_the_masks    |
| hair_mask_interval 7 -> 8 (every 7th -> every 8th step)    | test_hair_dont_care_steps, test_face_step_wires_the_masks (and test_schedule) |
| hair_is_dont_care: warm_step < it -> warm_step <= it       | test_hair_dont_care_steps                                      |
| face_step: hair_is_dont_care(it) -> not ...                | test_face_step_wires_the_masks                                 |
| attention_prior: hair term on don't-care steps instead     | test_attention_prior_exact                                     |
| alpha_prior: (1 - a) inside -> a inside                    | test_alpha_prior_exact                                         |
| step_mouth_code: progress from step 0, not warm_step       | test_step_mouth_code_share_grows_after_warm_up                 |

Sampling and schedule mutations: tests/scene/test_sampling.py, tests/scene/test_schedule.py.
"""
from __future__ import annotations

import pytest
import torch

from arguments import OptimizationParams
from scene.models.gaussian_model import GaussianModel
from scene.models.motion_net import FaceMotionNet, MouthMotionNet
from scene.training.schedule import face_schedule, hair_is_dont_care, mouth_schedule
from scene.training.stages import (GREEN, Conditioning, GaussianBranch, alpha_prior, attention_prior, face_step,
                          face_supervision, fill, mouth_background, mouth_dont_care, mouth_step,
                          mouth_supervision, step_mouth_code, training_background)

GREEN_BG = torch.tensor(GREEN).view(1, 1, 1, 3)


def mask(*rows: str) -> torch.Tensor:
    """[1, H, W, 1] float mask from rows of '0'/'1'."""
    return torch.tensor([[float(c) for c in r] for r in rows])[None, ..., None]


def frame(h: int = 4, w: int = 4) -> torch.Tensor:
    """[1, H, W, 3] distinct, non-background colours: pixel (r, c) is (0.1 + r/10, 0.2 + c/10, 0.5)."""
    r, c = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([0.1 + r / 10, 0.2 + c / 10, torch.full((h, w), 0.5)], -1)[None].float()


def paint(image: torch.Tensor, where: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """The expected image: `colour` where the 0/1 mask is 1 (written with torch.where, not fill)."""
    return torch.where(where.bool(), colour.expand_as(image), image)


# a lips box with the mouth inside, except one mouth pixel (2, 3) that pokes out of the box
BOX = mask("0110",
           "0110",
           "0110",
           "0000")
MOUTH = mask("0000",
             "0110",
             "0011",
             "0000")
BOX_XOR_MOUTH = mask("0110",
                     "0000",
                     "0101",
                     "0000")


def test_fill_paints_the_region():
    image = frame()
    assert torch.equal(fill(image, BOX, GREEN_BG), paint(image, BOX, GREEN_BG))


def test_mouth_dont_care_is_lips_box_xor_mouth():
    assert torch.equal(mouth_dont_care(MOUTH, BOX), BOX_XOR_MOUTH)


def test_mouth_supervision_exact():
    render, gt = torch.full((1, 4, 4, 3), 0.3), frame()
    image, target = mouth_supervision(render, gt, MOUTH, BOX, GREEN_BG)
    # render: background on box XOR mouth, untouched elsewhere (outside the box it must learn green)
    assert torch.equal(image, paint(render, BOX_XOR_MOUTH, GREEN_BG))
    # target: the frame on the mouth mask (also the pixel outside the box), green everywhere else
    assert torch.equal(target, paint(gt, 1 - MOUTH, GREEN_BG))


def test_green_mouth_target():
    """Over upstream's green background the mouth target is exactly (0, 1, 0) wherever the mouth is not."""
    batch = {"image": frame()}
    bg = training_background(batch, Conditioning(background="green"))
    assert bg.shape == (1, 1, 1, 3) and bg.flatten().tolist() == [0.0, 1.0, 0.0]
    _, target = mouth_supervision(torch.zeros(1, 4, 4, 3), batch["image"], MOUTH, BOX, bg)
    off = ~MOUTH[0, ..., 0].bool()
    assert target[0][off].tolist() == [[0.0, 1.0, 0.0]] * int(off.sum())
    assert torch.equal(target[0][~off], batch["image"][0][~off])


def test_mouth_background_turns_black_in_the_tail_only():
    batch = {"image": frame()}
    green = Conditioning(background="green")
    assert mouth_background(batch, green, tail=False).flatten().tolist() == [0.0, 1.0, 0.0]
    assert mouth_background(batch, green, tail=True).flatten().tolist() == [0.0, 0.0, 0.0]
    # random backgrounds stay random in the tail: one torch.rand(B, 1, 1, 3) draw, as before
    torch.manual_seed(3)
    want = torch.rand(1, 1, 1, 3)
    torch.manual_seed(3)
    assert torch.equal(mouth_background(batch, Conditioning(background="random"), tail=True), want)
    with pytest.raises(ValueError):
        training_background(batch, Conditioning(background="black"))


FACE_ONLY = mask("0110",
                 "1111",
                 "1111",
                 "0110")
FACE = mask("1111",  # face incl. hair: must not be what the face field is fitted to
            "1111",
            "1111",
            "0110")
HAIR = mask("1001",
            "0000",
            "0000",
            "0000")
FACE_MOUTH = mask("0000",
                  "0000",
                  "0110",
                  "0000")


@pytest.mark.parametrize("hair_dont_care", [False, True])
def test_face_supervision_exact(hair_dont_care):
    render, gt = torch.full((1, 4, 4, 3), 0.3), frame()
    masks = {"face_only": FACE_ONLY, "face": FACE, "mouth": FACE_MOUTH, "hair": HAIR}
    image, target = face_supervision(render, gt, masks, GREEN_BG, hair_dont_care)
    # the frame on face_only minus the mouth, green elsewhere (the hair too: it is off face_only)
    want_target = paint(gt, 1 - FACE_ONLY * (1 - FACE_MOUTH), GREEN_BG)
    assert torch.equal(target, want_target)
    # hair is painted green in the render only on don't-care steps; otherwise the render must learn it
    assert torch.equal(image, paint(render, HAIR, GREEN_BG) if hair_dont_care else render)


def test_hair_dont_care_steps():
    """After the warm-up and before hair_mask_until, except every 7th step (upstream hair_mask_interval)."""
    sched = face_schedule(100)  # warm_step 6, hair_mask_until 92
    assert (sched.warm_step, sched.hair_mask_until, sched.hair_mask_interval) == (6, 92, 7)
    steps = [it for it in range(101) if hair_is_dont_care(it, sched)]
    assert steps == [it for it in range(7, 92) if it % 7 != 0]
    assert steps[:8] == [8, 9, 10, 11, 12, 13, 15, 16]
    full = face_schedule()
    assert [hair_is_dont_care(it, full) for it in (3000, 3001, 3003, 3004, 45999, 46000)] == \
        [False, True, False, True, True, False]


def test_attention_prior_exact():
    att = torch.zeros(1, 4, 4, 3)
    att[..., 0], att[..., 1], att[..., 2] = 0.4, 0.8, 1.6  # audio, expression, mouth code
    lips = 1e-4 * 0.8 * 6 / 16  # expression attention over the 6 lips-box pixels
    hair = 1e-4 * (0.4 + 0.8 + 1.6) * 2 / 16  # every kind over the 2 hair pixels
    assert attention_prior(att, BOX, HAIR, hair_dont_care=True).item() == pytest.approx(lips, rel=1e-6)
    assert attention_prior(att, BOX, HAIR, hair_dont_care=False).item() == pytest.approx(lips + hair, rel=1e-6)


def test_alpha_prior_exact():
    alpha = torch.full((1, 4, 4, 1), 0.25)
    # inside the 6 box pixels 1 - 0.25 counts, outside (10 pixels) 0.25 counts
    assert alpha_prior(alpha, BOX).item() == pytest.approx((0.75 * 6 + 0.25 * 10) / 16, rel=1e-6)


def test_step_mouth_code_share_grows_after_warm_up():
    """No predicted codes until the warm-up ends, share x progress of them at the last step."""
    class Net:
        mouth_dim = 2

    own, pred = torch.zeros(64, 2), torch.ones(64, 2)
    batch = {"mouth_code": own, "mouth_code_pred": pred}
    sched = mouth_schedule(100)
    cond = Conditioning(code_noise=0.0, predicted_code_share=1.0)
    torch.manual_seed(0)
    assert torch.equal(step_mouth_code(Net(), batch, sched.warm_step, sched, cond), own)
    assert torch.equal(step_mouth_code(Net(), batch, sched.iterations, sched, cond), pred)
    assert step_mouth_code(torch.nn.Linear(1, 1), batch, 50, sched, cond) is None


# ---- the steps use these rules: a 4x4 view of a few Gaussians ------------------------------------------
def _branch(kind: str, sched) -> GaussianBranch:
    torch.manual_seed(0)
    g = GaussianModel.random_init(20, 0, seed=0)
    net = MouthMotionNet(audio_in_dim=4) if kind == "mouth" else FaceMotionNet(audio_in_dim=4, exp_method="au")
    return GaussianBranch(g, net, OptimizationParams(), sched, extent=0.1, grad_threshold=2e-4)


def _batch(masks: dict) -> dict:
    viewmat = torch.eye(4)
    viewmat[2, 3] = 0.5
    K = torch.tensor([[8.0, 0, 2.0], [0, 8.0, 2.0], [0, 0, 1]])
    zeros = torch.zeros(1, 4, 4, 1)
    all_masks = {k: zeros for k in ("face", "face_only", "mouth", "hair", "neck", "cloth", "teeth", "lips_box")}
    all_masks.update(masks)
    return {"image": frame(), "masks": all_masks, "viewmats": viewmat[None], "Ks": K[None],
            "audio_windows": torch.randn(1, 8, 4, 2), "expression": torch.rand(1, 6), "jaw": torch.zeros(1, 3),
            "lips_rect": torch.tensor([[0, 3, 1, 3]])}


@pytest.mark.parametrize("it", [1, 50, 99])  # static, with motion, tail (black background)
def test_mouth_step_wires_the_masks(it):
    sched = mouth_schedule(100)
    batch = _batch({"mouth": MOUTH, "lips_box": BOX, "teeth": BOX})
    _, _, aux = mouth_step(_branch("mouth", sched), it, batch, 4, 4, "torch", cond=Conditioning(background="green"))
    bg = torch.tensor([0.0, 0.0, 0.0] if it > sched.bg_iter else [0.0, 1.0, 0.0]).view(1, 1, 1, 3)
    assert torch.equal(aux["target"], paint(batch["image"], 1 - MOUTH, bg))
    dont_care = BOX_XOR_MOUTH[0, ..., 0].bool()
    assert aux["image"][0][dont_care].tolist() == [bg.flatten().tolist()] * int(dont_care.sum())


@pytest.mark.parametrize("it", [13, 14])  # hair don't care, hair supervised (every 7th)
def test_face_step_wires_the_masks(it):
    sched = face_schedule(100)
    batch = _batch({"face_only": FACE_ONLY, "face": FACE, "mouth": FACE_MOUTH, "hair": HAIR, "lips_box": BOX})
    _, _, aux = face_step(_branch("face", sched), it, batch, 4, 4, "torch", cond=Conditioning(background="green"))
    want = paint(batch["image"], 1 - FACE_ONLY * (1 - FACE_MOUTH), GREEN_BG)
    assert torch.equal(aux["target"], want)
    hair_px = aux["image"][0][HAIR[0, ..., 0].bool()]
    if it % 7:
        assert hair_px.tolist() == [[0.0, 1.0, 0.0]] * 2
    else:
        assert hair_px.tolist() != [[0.0, 1.0, 0.0]] * 2  # the render itself, held to green by the loss
