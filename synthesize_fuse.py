"""Render a trained model: the test split with metrics, or any new audio to an mp4 with sound.

    python synthesize_fuse.py -S data/<ID> -M output/<ID> --eval                       # val split + metrics
    python synthesize_fuse.py -S data/<ID> -M output/<ID> --use_train --audio speech.wav
    python synthesize_fuse.py -S data/<ID> -M output/<ID> --use_train --audio speech_ph.npy   # precomputed

New audio: output/<ID>/train/ours_None/renders/<audio stem>.mp4 (with sound; --out PATH.mp4 chooses
it), beside it <stem>_silent.mp4, <stem>_mouth_codes.npy and unless --fast <stem>_face.mp4,
<stem>_mouth.mp4, <stem>_sheet.png. An existing render is never replaced without --overwrite.
--eval and the training split (no --audio) write output/<ID>/{test,train}/ours_None/: renders/out.mp4,
renders/out_with_audio.mp4, gt/out.mp4, and unless --fast renders/out_face.mp4, renders/out_mouth.mp4,
renders/side_by_side.mp4 (render | ground truth | error) and contact_sheet.png; with --eval also
metrics.json and metrics.md (these are rewritten on each run). New audio is featurised with the
extractor the model was trained with (cfg_args.json); audio longer than the training track replays its
poses forwards and backwards.

Lips (models trained with mouth codes, docs/lip_sync.md): the audio-to-mouth model predicts the mouth
codes from the driving audio (a precomputed <stem>_ph.npy needs its <stem>_mel.npy beside it); --eval
renders the val frames from their audio and again with their own codes (renders/out_own_codes.mp4,
metrics.json "own_codes": the upper bound); --lip_gain K widens the predicted lip movement (default
1.5: the fields alone open the mouth only 0.5-0.75x as wide as the speaker); --mouth_codes FILE.npy
drives the lips with saved codes, as they are.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from arguments import ModelParams, SynthesisParams, add_group, extract_group, restore_from_args

# the model settings a render may change; the others are restored from the training run's cfg_args.json
RENDER_FLAGS = ("model_path", "source_path", "resolution", "audio_extractor", "backend", "device")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)  # a mistyped or removed flag is an error, not another flag
    add_group(p, ModelParams, only=RENDER_FLAGS[:1], suppress_defaults=True, title="model",
              description="The trained model (train.py's -m).")
    add_group(p, ModelParams, only=RENDER_FLAGS[1:], suppress_defaults=True, title="restored",
              defaults_from="default: the training run's", description="The trained model's settings "
              "(<model>/cfg_args.json) that a render may change.")
    add_group(p, SynthesisParams, title="synthesis")
    return p


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def _audio_inputs(path: Path, kinds: list[str]) -> tuple[dict[str, np.ndarray], Path | None]:
    """Features of new audio for every kind in `kinds` ({kind: [T, C, W]}) and the sound to mux.

    `path` is any audio file (featurised here), or a precomputed `<stem>_<postfix>.npy`; then the other
    kinds are read from `<stem>_<their postfix>.npy` beside it.
    """
    from data_utils.audio.registry import get_extractor
    from data_utils.audio_features import extract_features, load_audio, load_features

    if not path.is_file():
        raise FileNotFoundError(f"Audio does not exist: {path}")
    feats = {}
    if path.suffix == ".npy":
        stem = path.stem.rsplit("_", 1)[0]
        for kind in kinds:
            npy = path.with_name(f"{stem}_{get_extractor(kind).postfix}.npy")
            if not npy.is_file():
                raise FileNotFoundError(f"{npy} is missing: the model reads {' and '.join(kinds)} features "
                                        f"(python data_utils/audio_features.py --wav <audio> --extractor {kind})")
            feats[kind] = load_features(npy, expected_extractor=kind).array
        sound = next((c for c in path.parent.glob(stem + ".*") if c.suffix in (".wav", ".flac", ".mp3", ".m4a")), None)
    else:
        samples = load_audio(path)
        if samples.size == 0:
            raise ValueError(f"Audio is empty: {path}")
        if float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) < 1e-4:
            raise ValueError(f"Audio is silent (RMS < 1e-4): {path}; nothing would drive the lips")
        feats = {kind: extract_features(samples, kind).array for kind in kinds}
        sound = path
    arrays = {k: np.ascontiguousarray(v.transpose(0, 2, 1), dtype=np.float32) for k, v in feats.items()}  # [T, C, W]
    _warn_if_short(path, min(len(a) for a in arrays.values()))
    if len({len(a) for a in arrays.values()}) != 1:
        raise ValueError(f"{path}: the feature files cover different frame counts "
                         f"{ {k: len(a) for k, a in arrays.items()} }")
    return arrays, sound


def _cut_audio(src: Path, start_s: float, duration_s: float, out: Path) -> Path:
    from utils.io_utils import atomic_path
    from utils.video_io import ffmpeg_exe

    with atomic_path(out) as tmp:
        subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-ss", f"{start_s:.3f}", "-t", f"{duration_s:.3f}",
                        "-i", str(src), "-c:a", "pcm_s16le", str(tmp)], check=True, capture_output=True)
    return out


def _warn_if_short(path: Path, n_frames: int, min_seconds: float = 0.5) -> None:
    if n_frames < min_seconds * 25:
        logging.warning("%s is only %.2f s (%d frames): too short for the lips to show speech (give at least %.1f s)",
                        path, n_frames / 25, n_frames, min_seconds)


def _load_mouth_codes(path: Path, names: list[str]) -> np.ndarray:
    """A saved [T, M] mouth-code array (raw units, the columns of `names`)."""
    if not path.is_file():
        raise FileNotFoundError(f"Mouth codes do not exist: {path}")
    codes = np.load(path, allow_pickle=False)
    if codes.ndim != 2 or codes.shape[1] != len(names):
        raise ValueError(f"{path}: expected [frames, {len(names)}] mouth codes ({', '.join(names)}), got {codes.shape}")
    return codes.astype(np.float32)


def _render_pass(renderer, seq, n_frames: int, data, paths: dict[str, Path], syn: SynthesisParams, desc: str,
                 lpips=None):
    """Render `n_frames` of `seq` into the videos named in `paths` (out, face, mouth, gt, side).

    Returns (FrameMetrics or None, contact-sheet tiles, seconds spent rendering).
    """
    from tqdm import tqdm

    from gaussian_renderer.render import Views
    from utils.metrics import FrameMetrics
    from utils.video_io import VideoWriter

    device = renderer.face.means.device
    writers = {k: VideoWriter(p) for k, p in paths.items()}
    metrics = FrameMetrics(lpips=lpips) if "gt" in writers else None
    parts = "face" in writers
    sheet, sheet_every = [], max(n_frames // 8, 1)
    render_seconds = 0.0
    bar = tqdm(total=n_frames, desc=desc, disable=syn.quiet, dynamic_ncols=True)
    try:
        for start, batch in seq.batches(syn.batch_size):
            if start >= n_frames:
                break
            keep = min(n_frames - start, batch["viewmats"].shape[0])
            views = Views(batch["viewmats"][:keep], batch["Ks"][:keep], data.width, data.height)
            code = renderer.normalise(batch["mouth_code_raw"][:keep]) if renderer.uses_mouth_codes else None
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.time()
            out = renderer.render(views, batch["audio_windows"][:keep], batch["expression"][:keep],
                                  batch["background"][:keep], code, dilate=syn.dilate, parts=parts)
            image = out["image"] if parts else out
            if device.type == "cuda":
                torch.cuda.synchronize()
            render_seconds += time.time() - t0
            frames = _to_uint8(image)
            for f in frames:
                writers["out"].write(f)
            if parts:
                for f in _to_uint8(out["face"]):
                    writers["face"].write(f)
                for f in _to_uint8(out["mouth_over_bg"]):
                    writers["mouth"].write(f)
            gts = None
            if metrics is not None:
                gt = batch["image"][:keep]
                gts = _to_uint8(gt)
                for f in gts:
                    writers["gt"].write(f)
                face_mask = (batch["masks"]["face"][:keep] + batch["masks"]["mouth"][:keep]).clamp(0, 1)
                metrics.add(image, gt, face_mask)
                if "side" in writers:
                    err = _to_uint8(((image - gt).abs().mean(-1, keepdim=True) * 4).expand(-1, -1, -1, 3))
                    for r, g, e in zip(frames, gts, err):
                        writers["side"].write(np.concatenate([r, g, e], axis=1))
            for k in range(keep):
                if (start + k) % sheet_every == 0 and len(sheet) < 8:
                    sheet.append(np.concatenate([frames[k]] + ([gts[k]] if gts is not None else []), axis=0))
            bar.update(keep)
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        bar.close()
    return metrics, sheet, render_seconds


def _landmark_scores(render: Path, gt: Path) -> dict:
    from data_utils.lip_tracking import landmark_metrics
    from utils.video_io import iter_frames

    try:
        scores = landmark_metrics(iter_frames(render), iter_frames(gt))
    except ImportError:
        logging.warning("mediapipe is not installed: LMD and mouth-opening correlation skipped")
        return {}
    return {k: v for k, v in scores.items() if k != "frames"}


def output_paths(model_path: str, syn: SynthesisParams):
    """Where this run writes: a new-audio render is claimed under its own name (utils/render_paths.py)."""
    from utils.render_paths import claim_render_paths, default_render_path, render_paths, split_render_paths

    driver = syn.audio or (syn.mouth_codes if not syn.eval else "")  # what a new render is named after
    if driver:
        stem = Path(driver).stem
        if syn.audio and Path(syn.audio).suffix == ".npy":
            stem = stem.rsplit("_", 1)[0]  # speech_ph.npy -> speech
        return claim_render_paths(syn.out or default_render_path(model_path, stem), syn.overwrite)
    if syn.out:
        render_paths(syn.out)  # a bad name is reported first
        raise ValueError("--out names a render of new audio or mouth codes; --eval and the training split write "
                         f"to {Path(model_path)}/{{test,train}}/ours_None/")
    split = "train" if (syn.use_train or not syn.eval) else "val"
    return split_render_paths(Path(model_path) / ("test" if split == "val" else "train") / "ours_None")


def synthesize(model: ModelParams, syn: SynthesisParams) -> dict:
    """Render, after claiming the output names; a failed run gives back the names it claimed."""
    if syn.lip_gain <= 0:
        raise ValueError(f"--lip_gain must be > 0, got {syn.lip_gain}")
    paths = output_paths(model.model_path, syn)
    try:
        return render(model, syn, paths)
    except BaseException:
        paths.release()
        raise


def render(model: ModelParams, syn: SynthesisParams, out) -> dict:
    """One render into the files of `out` (utils.render_paths.RenderPaths)."""
    from scene.models.fused_renderer import FusedRenderer
    from scene.data.dataset import load_subject
    from scene.data.sequence import RenderSequence
    from utils.general_utils import resolve_device
    from utils.io_utils import save_json, save_npy, save_text
    from utils.metrics import load_lpips_metric, markdown_table
    from utils.video_io import mux_audio

    device = resolve_device(model.device)
    model_path, data_dir = Path(model.model_path), Path(model.source_path)
    renderer = FusedRenderer.from_checkpoint(model_path, device, model.exp_method, model.backend)
    codes_kinds = renderer.mouth_feature_kinds if renderer.uses_mouth_codes else []
    features, sound, new_mouth_feats, new_activity = None, None, None, None
    if syn.audio:
        kinds = list(dict.fromkeys([model.audio_extractor, *codes_kinds]))
        inputs, sound = _audio_inputs(Path(syn.audio), kinds)
        features = inputs[model.audio_extractor]
        if features.shape[1] != renderer.audio_channels:
            raise ValueError(f"{syn.audio}: features have {features.shape[1]} channels but the model expects "
                             f"{renderer.audio_channels} ({model.audio_extractor} features)")
        if codes_kinds:
            from scene.data.mouth_features import mouth_audio_features, speech_activity

            new_mouth_feats = mouth_audio_features({k: inputs[k] for k in codes_kinds})
            new_activity = speech_activity(inputs["phoneme"]) if "phoneme" in inputs else None
    if syn.mouth_codes and not renderer.uses_mouth_codes:
        raise ValueError(f"{model_path} was trained without mouth codes (--mouth_input none): --mouth_codes has no effect")
    split = "train" if (syn.use_train or not syn.eval) else "val"
    data = load_subject(data_dir, split, model.resolution, model.audio_extractor, model.exp_method, device=device,
                        progress=not syn.quiet, expression_input=model.expression_input,
                        mouth_features=tuple(codes_kinds) if split == "val" else (),
                        mouth_code_names=tuple(renderer.audio_to_mouth.names) if renderer.uses_mouth_codes else ())

    # what drives the lips: codes from a file, or predicted from the driving audio
    codes = None
    if syn.mouth_codes:
        codes = _load_mouth_codes(Path(syn.mouth_codes), renderer.audio_to_mouth.names)
    elif renderer.uses_mouth_codes:
        new = new_mouth_feats is not None
        clip, activity = (new_mouth_feats, new_activity) if new else (data.mouth_features, data.mouth_activity)
        predicted = renderer.mouth_codes(clip, activity).cpu().numpy()
        codes = predicted if features is not None else predicted[data.aud_ids]  # val frames' stretch of the clip
        codes = renderer.widen(codes, syn.lip_gain)  # (saved codes, --mouth_codes, are taken as they are)
    if features is not None:
        seq = RenderSequence.new_audio(data, features, device)
    elif syn.mouth_codes and split == "train":
        silence = np.zeros((len(codes),) + tuple(data.audio.shape[1:]), np.float32)  # the codes alone move the lips
        seq = RenderSequence.new_audio(data, silence, device)
    else:
        seq = RenderSequence.eval_split(data)
        seq.has_gt = True
    if codes is not None:
        if len(codes) < len(seq):
            raise ValueError(f"{len(codes)} mouth codes for {len(seq)} frames: give one row per frame")
        seq.mouth_codes = torch.from_numpy(codes[:len(seq)]).to(device)
    n_frames = len(seq) if syn.max_frames <= 0 else min(len(seq), syn.max_frames)
    out_dir = model_path / ("test" if split == "val" else "train") / "ours_None"
    render_dir = out.silent.parent
    extras = not syn.fast
    paths = {"out": out.silent}
    if extras:
        paths.update(face=out.face, mouth=out.mouth)
    if seq.has_gt:
        paths["gt"] = out.gt
        if extras:
            paths["side"] = out.side
    lpips, lpips_skipped = load_lpips_metric(syn.lpips_weights, device) if seq.has_gt else (None, None)
    skipped = {"lpips": lpips_skipped} if lpips_skipped else {}
    t_start = time.time()
    desc = "render (mouth codes from audio)" if codes is not None and not syn.mouth_codes else "render"
    metrics, sheet, render_seconds = _render_pass(renderer, seq, n_frames, data, paths, syn, desc, lpips)
    if codes is not None:
        save_npy(out.codes, codes[:n_frames])

    # sound: the val frames' stretch of aud.wav, or the new audio
    muxed = None
    fps = 25.0
    try:
        if sound is None and features is None and not syn.mouth_codes and (data_dir / "aud.wav").is_file():
            first = int(data.img_ids[seq.rows[0]])
            sound = _cut_audio(data_dir / "aud.wav", first / fps, n_frames / fps, out_dir / "audio.wav")
        if sound is not None:
            muxed = mux_audio(out.silent, sound, out.main)
        else:
            logging.warning("no audio to mux (no audio given, or precomputed features without a matching audio file)")
    except RuntimeError as e:  # no ffmpeg on this machine (imageio-ffmpeg missing)
        logging.warning("audio not muxed: %s", e)
    if sheet:
        import cv2

        from utils.io_utils import atomic_path

        with atomic_path(out.sheet) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(sheet, axis=1), cv2.COLOR_RGB2BGR))
    result = {"split": split, "frames": n_frames, "render_fps": round(n_frames / max(render_seconds, 1e-9), 1),
              "out": str(out.silent), "out_with_audio": str(muxed) if muxed else None,
              "device": str(device),
              "lips_driven_by": ("mouth codes from " + (str(syn.mouth_codes) if syn.mouth_codes else "the audio")
                                 if codes is not None else "the motion nets' audio path")}
    if codes is not None and not syn.mouth_codes:
        result["lip_gain"] = syn.lip_gain  # the numbers depend on it (--eval rewrites metrics.json each run)
    out.release()  # the claimed name of the sound version when no sound could be muxed
    if metrics is not None:
        result.update(metrics.summary())
        scores = _landmark_scores(paths["out"], paths["gt"]) if extras else {}
        result.update(scores)
        if not scores:
            why = "mediapipe is not installed" if extras else "--fast (no landmark pass)"
            skipped.update(lmd=why, mouth_open_corr=why)
        if extras and renderer.uses_mouth_codes and not syn.mouth_codes:
            # the upper bound: the same frames driven by their own mouth codes (what a perfect audio model gives)
            own = RenderSequence.eval_split(data)
            own_paths = {"out": render_dir / "out_own_codes.mp4", "gt": out.gt}
            own_metrics, _, _ = _render_pass(renderer, own, n_frames, data, own_paths, syn, "render (own mouth codes)",
                                             lpips)
            result["own_codes"] = {**own_metrics.summary(), **_landmark_scores(own_paths["out"], paths["gt"])}
        result["wall_seconds"] = round(time.time() - t_start, 2)
        result["skipped"] = skipped
        save_json(out_dir / "metrics.json", result)
        save_text(out_dir / "metrics.md", markdown_table({**_flat({k: v for k, v in result.items() if k != "skipped"}),
                                                          "skipped": skipped}))
    result["wall_seconds"] = round(time.time() - t_start, 2)
    result["written"] = [str(p) for p in out.written()]
    return result


def _flat(d: dict, prefix: str = "") -> dict:
    """{"own_codes": {"psnr": x}} -> {"own_codes.psnr": x} (for the markdown table)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    syn = extract_group(args, SynthesisParams)
    logging.basicConfig(level=logging.WARNING if syn.quiet else logging.INFO, format="%(message)s")
    if not getattr(args, "model_path", ""):
        print("error: give the trained model folder (-M output/<ID>)", file=sys.stderr)
        return 2
    try:
        model = restore_from_args(args)  # RENDER_FLAGS typed now over the training run's settings
        if not model.source_path:
            print("error: give the processed subject folder (-S data/<ID>)", file=sys.stderr)
            return 2
        result = synthesize(model, syn)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{result['frames']} frames -> {result['out_with_audio'] or result['out']}"
          f"{' (with sound)' if result['out_with_audio'] else ' (no sound)'}  "
          f"(render loop {result['render_fps']} FPS, {result['wall_seconds']} s end to end)")
    groups: dict[str, list[str]] = {}
    for path in map(Path, result["written"]):
        groups.setdefault(str(path.parent), []).append(path.name)
    print("wrote: " + "; ".join(f"{folder}/ {', '.join(names)}" for folder, names in groups.items()))
    for k in ("psnr", "ssim", "face_psnr", "face_ssim", "lpips", "face_lpips", "lmd", "mouth_open_corr"):
        if result.get(k) is not None:
            print(f"  {k}: {result[k]:.4f}")
    for k, why in result.get("skipped", {}).items():
        print(f"  {k}: skipped ({why})")
    own = result.get("own_codes", {})
    if own:
        print("  with the frames' own mouth codes (upper bound): "
              + ", ".join(f"{k} {own[k]:.4f}" for k in ("face_psnr", "lmd", "mouth_open_corr") if own.get(k) is not None))
    return 0


if __name__ == "__main__":
    from utils.quiet_logs import quiet_third_party_logs

    quiet_third_party_logs()  # MediaPipe / TFLite / absl lines off the terminal
    sys.exit(main())
