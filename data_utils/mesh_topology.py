"""MediaPipe face-mesh index sets (478 points with refined irises) used across preprocessing.

"Left"/"right" are the subject's own sides, as in MediaPipe's names: the subject's RIGHT eye is on
the image's left. Loops are ordered polygons (closed implicitly), usable with cv2.fillPoly.
A test checks every loop against MediaPipe's own connection sets.
"""
from __future__ import annotations

import numpy as np

N_POINTS = 478       # 468 mesh points + 10 iris points (refine_landmarks=True / Tasks API)
N_MESH_POINTS = 468

# Face outline, clockwise in the image starting at the forehead top (10), through the chin (152).
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
# Lower part of the oval, ear to ear through the chin (image left -> image right).
JAW_LINE = [127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
            377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356]
CHIN, FOREHEAD_TOP, NOSE_TIP = 152, 10, 1

LIPS_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
LIPS_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
MOUTH_CORNERS = (61, 291)          # outer lip corners (subject right, subject left)
LIP_INNER_MID = (13, 14)           # inner upper / inner lower lip midpoints

RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
EYE_CORNERS = [33, 133, 362, 263]  # right outer, right inner, left inner, left outer
# Eye-aspect-ratio points per eye: (outer corner, inner corner, [upper lid], [lower lid]); pairs line up.
RIGHT_EYE_EAR = (33, 133, [160, 159, 158], [144, 145, 153])
LEFT_EYE_EAR = (263, 362, [387, 386, 385], [373, 374, 380])

RIGHT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]   # upper edge outer->inner, then lower edge back
LEFT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
RIGHT_BROW_UPPER = [70, 63, 105, 66, 107]
LEFT_BROW_UPPER = [300, 293, 334, 296, 336]

RIGHT_IRIS = [469, 470, 471, 472]  # centre 468
LEFT_IRIS = [474, 475, 476, 477]   # centre 473
IRIS_CENTERS = (468, 473)

NOSE_BRIDGE = [168, 6, 197, 195, 5, 4, 1]
NOSE = sorted({1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220,
               275, 278, 294, 326, 327, 344, 440})
CHEEKS = (205, 425)                # mid-cheek points (subject right, subject left), rise with a smile

# Points that move with the skull, not with the jaw, lips, brows or lids: forehead, temples, nose
# bridge and base, eye corners, the oval near the ears. Used for the rigid head-pose fit.
RIGID = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4,
         109, 338, 67, 297, 103, 332, 54, 284, 21, 251, 162, 389, 127, 356, 234, 454,
         33, 133, 362, 263, 98, 327, 129, 358, 64, 294, 122, 351, 245, 465]

# Fixed MediaPipe -> iBUG-68 correspondence (index i of this list = iBUG point i).
#  0-16 jaw (image left -> right), picked for near-even arc length along the oval on frontal faces;
# 17-21 / 22-26 brows (upper edge, outer->inner / inner->outer); 27-30 nose bridge to tip;
# 31-35 nostril base; 36-41 / 42-47 eyes (corner, 2 upper lid, corner, 2 lower lid);
# 48-59 outer lips from the image-left corner; 60-67 inner lips from the image-left corner.
MP_TO_IBUG68 = [
    127, 234, 93, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 323, 454, 356,   # 0-16
    70, 63, 105, 66, 107,                                                                # 17-21
    336, 296, 334, 293, 300,                                                             # 22-26
    168, 197, 5, 4,                                                                      # 27-30
    98, 97, 2, 326, 327,                                                                 # 31-35
    33, 160, 158, 133, 153, 144,                                                         # 36-41
    362, 385, 387, 263, 373, 380,                                                        # 42-47
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,                                  # 48-59
    78, 81, 13, 311, 308, 402, 14, 178,                                                  # 60-67
]
assert len(MP_TO_IBUG68) == 68


def to_ibug68(points: np.ndarray) -> np.ndarray:
    """Select the 68 iBUG points: [..., 478, D] -> [..., 68, D]."""
    assert points.shape[-2] >= N_MESH_POINTS, points.shape
    return points[..., MP_TO_IBUG68, :]
