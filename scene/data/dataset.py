"""The dataset reader: one split of a processed subject folder `data/<ID>/`, served as batches of tensors.

    data = load_subject("data/obama", split="train", resolution=512, audio_extractor="phoneme",
                        device="cuda")                       # builds data/obama/.cache/512x512/ once
    batch = data.batch([3, 17])                              # dict of tensors on `device`, B = 2
    allowed = data.stats.au25 >= data.stats.au25_percentiles[3]   # curricula are vector ops

As a script it builds (or checks) the cache and prints load/batch timings and memory as a table:
    python -m scene.data.dataset data/<ID> --resolution 512 --device cuda --storage device disk

Frames never all sit in host RAM at full size: they are read once into the compact uint8 cache of
scene/data/frame_cache.py, then either moved to `device` as uint8 (storage="device": fast training; cnn2
at 512x512 is ~3.3 GB) or read from disk per batch (storage="disk": bounded host RAM).

A batch (B frames; H, W the training size; C, W_a the audio feature channels and steps):
    index [B], img_id [B], aud_id [B]         long
    viewmats [B, 4, 4], Ks [B, 3, 3]          world-to-camera (OpenCV), intrinsics at H x W
    image [B, H, W, 3]                        ground truth in [0, 1] (DEGSTalk: ori_imgs)
    background [B, H, W, 3]                   per-frame background with hair (bg/<i>.png)
    masks {face, face_only, mouth, hair, neck, cloth, teeth, bg, lips_box}: float [B, H, W, 1]
    lips_rect [B, 4] long                     [rmin, rmax, cmin, cmax] (row, col order, end exclusive)
    mouth_bound [B, 3]                        [lb, ub, cur] mouth opening (pixels at H x W)
    au25 [B], blink [B], au_exp [B, 6]
    expression [B, E]                         3dmm_exp [B, 52] (exp_method "3dmm") or au_exp (E = 6)
    jaw [B, 3]                                SMIRK jaw (only when 3dmm.pt exists)
    audio_windows [B, 8, C, W_a]              audio features of frames aud_id-4 .. aud_id+3
    mouth_code_raw [B, M]                     the frame's own mouth codes (frame_features.mouth_codes)
    mouth_code, mouth_code_pred [B, M]        standardised own / out-of-fold predicted codes (after
                                              attach_mouth_model; scene/models/audio_to_mouth.py)
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene.data import frame_features as ff
from scene.data import subject_files as sf
from scene.data.audio_windows import audio_windows
from scene.data.cameras import SPLIT_FILES, CameraSet, make_cameras, read_transforms
from scene.data.frame_cache import FRAME_ARRAYS, FrameCache, ensure_cache
from scene.data.frame_features import FrameStats

log = logging.getLogger(__name__)

HOST_STORAGE_LIMIT = 1 << 30  # storage="auto" on CPU keeps at most this many frame bytes in RAM
DEVICE_STORAGE_FRACTION = 0.5  # storage="auto" on CUDA uses at most this share of free GPU memory
LOAD_CHUNK = 64  # frames per host->device copy when storage="device"


class SubjectData:
    """One split of a subject at one resolution; see the module docstring for what a batch holds."""

    def __init__(self, data_dir: Path, split: str, cache: FrameCache, cameras: CameraSet, img_ids: np.ndarray,
                 aud_ids: np.ndarray, per_frame: dict[str, np.ndarray], au25_stats: dict[str, float],
                 audio: np.ndarray, audio_extractor: str, exp_method: str, device: torch.device, storage: str,
                 mouth_code_names: list[str] | None = None, mouth_features: np.ndarray | None = None,
                 mouth_activity: np.ndarray | None = None):
        self.data_dir, self.split, self.cache = data_dir, split, cache
        self.cameras, self.device, self.storage = cameras, device, storage
        self.img_ids, self.aud_ids = img_ids, aud_ids  # [N] numpy
        self.per_frame = per_frame  # numpy arrays with leading N (see _frame_tensors)
        self.au25_stats = au25_stats
        self.audio_extractor, self.exp_method = audio_extractor, exp_method
        self.mouth_code_names = mouth_code_names  # None: no mouth codes were read
        self.mouth_features = mouth_features  # [T, F] audio-to-mouth inputs of the whole clip, or None
        self.mouth_activity = mouth_activity  # [T] speech activity of the clip (closes the mouth in silence)
        self.rows = cache.rows(img_ids)  # [N] cache rows
        self.audio = torch.from_numpy(audio).to(device)  # [T, C, W_a]
        self.bc = self._bc_tensor()
        self._mask_table = torch.from_numpy(ff.mask_table()).to(device)  # [256, M]
        self._t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in per_frame.items()}
        self._t["viewmats"] = torch.from_numpy(cameras.viewmats).to(device)
        self._t["Ks"] = torch.from_numpy(cameras.Ks).to(device)
        self._frames: dict[str, Tensor] = self._load_frames() if storage == "device" else {}

    # ---- properties the trainer reads -----------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return len(self.img_ids)

    def __len__(self) -> int:
        return self.num_frames

    @property
    def width(self) -> int:
        return self.cameras.width

    @property
    def height(self) -> int:
        return self.cameras.height

    @property
    def extent(self) -> float:
        return self.cameras.extent

    @property
    def audio_channels(self) -> int:
        return int(self.audio.shape[1])

    @property
    def has_jaw(self) -> bool:
        return "jaw" in self.per_frame

    def attach_mouth_model(self, model, predicted: np.ndarray | None = None) -> None:
        """Serve standardised mouth codes (`model`: scene.models.audio_to_mouth.AudioToMouth, its statistics).

        Args:
            predicted: [N, M] raw codes predicted for this split's frames (out-of-fold for the training
                split), served as mouth_code_pred; None: the own codes stand in.
        """
        missing = [n for n in model.names if n not in (self.mouth_code_names or [])]
        if missing:
            raise ValueError(f"the audio-to-mouth model predicts {model.names} but {self.data_dir} gives "
                             f"mouth codes {self.mouth_code_names}: retrain it (train.py --stage lips)")
        if self.mouth_code_names != model.names:  # keep the model's codes, in its order
            cols = [self.mouth_code_names.index(n) for n in model.names]
            self.per_frame["mouth_code_raw"] = self.per_frame["mouth_code_raw"][:, cols]
            self._t["mouth_code_raw"] = self._t["mouth_code_raw"][:, cols]
            self.mouth_code_names = list(model.names)
        stats = model.code_mean.cpu(), model.code_std.cpu()
        norm = lambda a: ((torch.as_tensor(a, dtype=torch.float32) - stats[0]) / stats[1]).to(self.device)
        self._t["mouth_code"] = norm(self.per_frame["mouth_code_raw"])
        self._t["mouth_code_pred"] = norm(predicted) if predicted is not None else self._t["mouth_code"]

    @property
    def stats(self):
        """Per-frame scalars for the sampling curricula (scene.data.frame_features.FrameStats, numpy [N])."""
        p = self.per_frame
        return FrameStats(au25=p["au25"], blink=p["blink"], mouth_open=p["mouth_bound"][:, 2],
                          mouth_pixels=p["mouth_pixels"])

    # ---- frames ----------------------------------------------------------------------------------------
    def _bc_tensor(self) -> Tensor:
        bc = sf.read_rgb(self.data_dir / "bc.jpg", "bc")
        bc = ff.resize_rgb(bc, (self.width, self.height))
        return torch.from_numpy(bc).to(self.device).float().div_(255.0)  # [H, W, 3]

    def _load_frames(self) -> dict[str, Tensor]:
        """Copy this split's cache rows to the device as uint8, a chunk at a time (bounded host RAM)."""
        out = {}
        for name in FRAME_ARRAYS:
            t = torch.empty((len(self.rows),) + self.cache.row_shape(name), dtype=torch.uint8, device=self.device)
            for s in range(0, len(self.rows), LOAD_CHUNK):
                t[s:s + LOAD_CHUNK] = torch.from_numpy(self.cache.read(name, self.rows[s:s + LOAD_CHUNK]))
            out[name] = t
        return out

    def _frame_arrays(self, idx: Tensor) -> dict[str, Tensor]:
        if self._frames:
            idx_d = idx.to(self.device)
            return {k: v[idx_d] for k, v in self._frames.items()}
        rows = self.rows[idx.cpu().numpy()]
        return {k: torch.from_numpy(self.cache.read(k, rows)).to(self.device, non_blocking=True) for k in FRAME_ARRAYS}

    def batch(self, indices, device: torch.device | str | None = None) -> dict:
        """Frames at split positions `indices` (int, list or 1-D tensor) as a dict of [B, ...] tensors."""
        idx = torch.as_tensor(np.atleast_1d(np.asarray(indices, dtype=np.int64)))
        if idx.dim() != 1 or bool(((idx < 0) | (idx >= self.num_frames)).any()):
            raise IndexError(f"frame indices must be a 1-D list in [0, {self.num_frames}), got {indices}")
        idx_d = idx.to(self.device)
        frames = self._frame_arrays(idx)
        decoded = self._mask_table[frames["labels"].long()]  # [B, H, W, M]: every mask by one gather
        masks = {name.removesuffix("_mask"): decoded[..., k:k + 1] for k, name in enumerate(ff.MASK_NAMES)}
        masks["lips_box"] = self.lips_box(idx_d)
        t = {k: v[idx_d] for k, v in self._t.items()}
        out = {
            "index": idx_d, "img_id": t["img_id"], "aud_id": t["aud_id"],
            "viewmats": t["viewmats"], "Ks": t["Ks"],
            "image": frames["images"].float().div_(255.0), "background": frames["bg"].float().div_(255.0),
            "masks": masks, "lips_rect": t["lips_rect"], "mouth_bound": t["mouth_bound"],
            "au25": t["au25"], "blink": t["blink"], "au_exp": t["au_exp"],
            "expression": t["3dmm_exp"] if self.exp_method == "3dmm" else t["au_exp"],
            "audio_windows": audio_windows(self.audio, t["aud_id"]),
        }
        if "3dmm_exp" in t:
            out["3dmm_exp"] = t["3dmm_exp"]
        if "jaw" in t:
            out["jaw"] = t["jaw"]
        for key in ("mouth_code_raw", "mouth_code", "mouth_code_pred"):
            if key in t:
                out[key] = t[key]
        if device is not None and torch.device(device) != self.device:
            out = _to(out, torch.device(device))
        return out

    def lips_box(self, idx: Tensor) -> Tensor:
        """Lips rectangles of frames `idx` as float masks [B, H, W, 1]."""
        r = self._t["lips_rect"][idx]  # [B, 4]
        rows = torch.arange(self.height, device=r.device)[None, :, None]
        cols = torch.arange(self.width, device=r.device)[None, None, :]
        box = ((rows >= r[:, 0, None, None]) & (rows < r[:, 1, None, None])
               & (cols >= r[:, 2, None, None]) & (cols < r[:, 3, None, None]))
        return box[..., None].float()

    def gt_image(self, batch: dict) -> Tensor:
        """TalkingGaussian-style ground truth: the frame with its parsing background replaced by bc.jpg."""
        bg = batch["masks"]["bg"]
        return batch["image"] * (1.0 - bg) + self.bc * bg

    def close(self) -> None:
        self._frames = {}
        self.cache.close()


def _to(obj, device: torch.device):
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj.to(device)


# ----------------------------------------------------------------------------- loading
def read_split(data_dir: str | Path, split: str):
    """The transforms of one split of a processed subject (cameras and frame ids; no frames loaded)."""
    data_dir = Path(data_dir)
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
    if not data_dir.is_dir():
        raise FileNotFoundError(f"Subject folder does not exist: {data_dir}")
    return read_transforms(sf.require(data_dir / SPLIT_FILES[split], "transforms"))


def split_frame_count(data_dir: str | Path, split: str = "train") -> int:
    """How many frames a split of a processed subject holds."""
    return len(read_split(data_dir, split).img_ids)


def _all_img_ids(data_dir: Path) -> np.ndarray:
    """Frames of every split present (one cache serves all splits)."""
    ids = [read_transforms(data_dir / f).img_ids for f in SPLIT_FILES.values() if (data_dir / f).is_file()]
    return np.unique(np.concatenate(ids))


def _check_rows(n_rows: int, need: int, path: Path) -> None:
    if n_rows < need:
        raise ValueError(f"{path} has {n_rows} frames but the transforms use frame {need - 1}; "
                         f"re-run its preprocessing step")


def _fit_aud_ids(aud_ids: np.ndarray, n_audio: int, path: Path) -> np.ndarray:
    """Audio frames must cover aud_id; a shortfall of 1-2 frames (rounding of the two durations) is clamped."""
    over = int(aud_ids.max()) - (n_audio - 1)
    if over > 2:
        raise ValueError(f"{path} has {n_audio} audio frames but the transforms use aud_id {aud_ids.max()}; "
                         f"re-extract the audio features of the whole clip")
    if over > 0:
        log.warning("%s is %d frame(s) shorter than the video; the last frames reuse its last window", path, over)
    return np.minimum(aud_ids, n_audio - 1)


def resolve_storage(storage: str, nbytes: int, device: torch.device) -> str:
    """'device' (all frames on `device`) or 'disk' (per-batch reads); 'auto' picks by size."""
    if storage in ("device", "disk"):
        return storage
    if storage != "auto":
        raise ValueError(f"storage must be auto, device or disk, got {storage!r}")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return "device" if nbytes < DEVICE_STORAGE_FRACTION * free else "disk"
    return "device" if nbytes < HOST_STORAGE_LIMIT else "disk"


def load_subject(data_dir: str | Path, split: str = "train", resolution: int = -1, audio_extractor: str = "phoneme",
                 exp_method: str = "3dmm", device: str | torch.device = "cpu", storage: str = "auto",
                 cache_dir: str | Path | None = None, workers: int | None = None, progress: bool = True,
                 expression_input: str = "upper_face", mouth_features: tuple[str, ...] = (),
                 mouth_code_names: tuple[str, ...] = ()) -> SubjectData:
    """Read one split of a processed subject folder (building its frame cache on first use).

    Args:
        data_dir: data/<ID> written by data_utils/process.py (or upstream's preprocessing).
        split: "train" (transforms_train.json) or "val" (transforms_val.json).
        resolution: -1 native, else the long side of the training images in pixels.
        audio_extractor: which aud_<postfix>.npy to read (phoneme, mel, pocketsphinx, deepspeech, hubert).
        exp_method: "3dmm" (expression from 3dmm.pt, required) or "au" (au.csv; 3dmm.pt optional).
        device: where batches (and, with storage="device", all frames) live.
        storage: "device", "disk" or "auto" (device when the frames fit, see resolve_storage).
        cache_dir: folder for the frame cache (default data_dir/.cache).
        workers: threads used while building the cache (default: CPU count, at most 8).
        expression_input: what of the 3dmm expression the face net sees (scene.data.frame_features.exp_3dmm):
            "upper_face" (default), "eyelids", or "all" (upstream, the mouth shapes too).
        mouth_features: feature kinds of the audio-to-mouth model (e.g. ("phoneme", "mel")); when given,
            their aud_<postfix>.npy are read as `mouth_features` [T, F]. Mouth codes are always read.
        mouth_code_names: which mouth codes (scene.data.frame_features.mouth_codes; empty: all available).

    Raises:
        MissingSubjectFile: a needed file is absent (the message names it and the step that writes it).
        ValueError: a file is malformed, too short, or holds features of another extractor.
    """
    data_dir = Path(data_dir)
    device = torch.device(device)
    if exp_method not in ("3dmm", "au"):
        raise ValueError(f"exp_method must be 3dmm or au, got {exp_method!r}")
    ff.check_expression_input(expression_input)  # before the (slow) frame cache is built
    tf = read_split(data_dir, split)
    all_ids = _all_img_ids(data_dir)
    need = int(all_ids.max()) + 1

    # small per-frame data first: a missing file fails fast, before the cache is built
    au_path = data_dir / "au.csv"
    au = sf.read_au_csv(au_path)
    _check_rows(len(au["AU25_r"]), need, au_path)
    au_info = ff.au_features(au)  # percentiles over the whole clip, as upstream
    smirk_path = data_dir / "3dmm.pt"
    smirk = sf.read_3dmm(smirk_path) if exp_method == "3dmm" or smirk_path.exists() else None
    if smirk is not None:
        _check_rows(len(smirk["jaw_params"]), need, smirk_path)
    audio = sf.read_audio_features(data_dir, audio_extractor)  # [T, C, W_a]
    aud_ids = _fit_aud_ids(tf.aud_ids, audio.shape[0], sf.audio_feature_path(data_dir, audio_extractor))
    mouth_feats = mouth_activity = None
    if mouth_features:
        from scene.data.mouth_features import mouth_audio_features, speech_activity

        kinds = {k: audio if k == audio_extractor else sf.read_audio_features(data_dir, k) for k in mouth_features}
        mouth_feats = mouth_audio_features(kinds)
        mouth_activity = speech_activity(kinds["phoneme"]) if "phoneme" in kinds else None
        _fit_aud_ids(aud_ids, len(mouth_feats), sf.audio_feature_path(data_dir, mouth_features[-1]))

    cache = ensure_cache(data_dir, all_ids, resolution, cache_dir, workers, progress)
    cameras = make_cameras(tf, cache.native_wh, cache.size_wh)
    rows = cache.rows(tf.img_ids)
    scale = np.array([cache.size_wh[0] / cache.native_wh[0], cache.size_wh[1] / cache.native_wh[1]], np.float32)
    lms = cache.landmarks[rows] * scale  # [N, 68, 2] at the training size
    ids = tf.img_ids
    per_frame = {
        "img_id": ids, "aud_id": aud_ids,
        "lips_rect": np.stack([ff.lips_rect(l, cache.height, cache.width) for l in lms]),  # [N, 4]
        "mouth_bound": ff.mouth_bounds(ff.mouth_opening(lms)),  # [N, 3]
        "mouth_pixels": cache.mouth_pixels[rows],
        "au25": au_info["au25"][ids], "blink": au_info["blink"][ids], "au_exp": au_info["au_exp"][ids],
    }
    if smirk is not None:
        exp, jaw = ff.exp_3dmm(smirk, sf.expression_source(data_dir), keep=expression_input)
        per_frame["3dmm_exp"], per_frame["jaw"] = exp[ids], jaw[ids]
    codes, code_names = ff.mouth_codes(cache.landmarks[rows],
                                       None if smirk is None else {k: v[ids] for k, v in smirk.items()},
                                       sf.expression_source(data_dir), mouth_code_names)
    per_frame["mouth_code_raw"] = codes
    nbytes = len(ids) * cache.height * cache.width * 7
    chosen = resolve_storage(storage, nbytes, device)
    log.info("%s split of %s: %d frames at %dx%d, frames on %s (%.2f GB)", split, data_dir, len(ids),
             cache.width, cache.height, device if chosen == "device" else "disk", nbytes / 1e9)
    return SubjectData(data_dir, split, cache, cameras, ids, aud_ids, per_frame, au_info["au25_stats"],
                       audio, audio_extractor, exp_method, device, chosen, code_names, mouth_feats, mouth_activity)


# ----------------------------------------------------------------------------- CLI: build + measure
def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    import time

    ap = argparse.ArgumentParser(description="Build a subject's frame cache and time batches.")
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--resolution", type=int, default=-1)
    ap.add_argument("--audio_extractor", default="phoneme")
    ap.add_argument("--exp_method", default="3dmm")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--storage", nargs="+", default=["disk"], choices=["device", "disk", "auto"])
    ap.add_argument("--batches", type=int, default=200, help="random single-frame batches to time")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    rows = []
    try:
        for storage in args.storage:
            t0 = time.perf_counter()
            data = load_subject(args.data_dir, "train", args.resolution, args.audio_extractor, args.exp_method,
                                device, storage)
            t_load = time.perf_counter() - t0
            order = np.random.default_rng(0).integers(0, data.num_frames, args.batches)
            data.batch([0])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for i in order:
                data.batch([int(i)])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            ms = (time.perf_counter() - t0) / args.batches * 1e3
            gpu = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
            rows.append((storage, data.storage, data.num_frames, f"{data.width}x{data.height}", t_load, ms,
                         _peak_rss_mb(), gpu))
            data.close()
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("| storage | used | frames | size | open s | batch ms | peak host RSS MiB | peak GPU GiB |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} | {r[5]:.2f} | {r[6]:.0f} | {r[7]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
