"""Render a trained model: the test split with metrics, or any new audio to an mp4 with sound.

    python synthesize_fuse.py -S data/<ID> -M output/<ID> --eval                       # val split + metrics
    python synthesize_fuse.py -S data/<ID> -M output/<ID> --use_train --audio speech.wav
    python synthesize_fuse.py -S data/<ID> -M output/<ID> --use_train --audio speech_ph.npy   # precomputed

New audio: output/<ID>/train/ours_None/renders/<audio stem>.mp4 (with sound; --out PATH.mp4 chooses
it), beside it <stem>_silent.mp4 and unless --fast <stem>_face.mp4, <stem>_mouth.mp4, <stem>_sheet.png.
An existing render is never replaced without --overwrite. --eval and the training split (no --audio)
write output/<ID>/{test,train}/ours_None/: renders/out.mp4, renders/out_with_audio.mp4, gt/out.mp4, and
unless --fast renders/out_face.mp4, renders/out_mouth.mp4, renders/side_by_side.mp4 (render | ground
truth | error) and contact_sheet.png; with --eval also metrics.json and metrics.md (these are rewritten
on each run). New audio is featurised with the extractor the model was trained with (cfg_args.json);
audio longer than the training track replays its poses forwards and backwards.
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

from arguments import ModelParams, PipelineParams, add_group, extract_group, load_combined


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_group(p, ModelParams)
    add_group(p, PipelineParams)
    s = p.add_argument_group("synthesis")
    s.add_argument("--iteration", type=int, default=-1, help="unused: the latest checkpoint is rendered")
    s.add_argument("--use_train", action="store_true", help="render over the training split's poses/backgrounds")
    s.add_argument("--fast", action="store_true", help="only renders/out.mp4 (+ audio), no extra videos or metrics")
    s.add_argument("--dilate", action="store_true", help="dilate the mouth alpha (13x13) before compositing")
    s.add_argument("--batch_size", type=int, default=8, help="frames rendered per batch")
    s.add_argument("--max_frames", type=int, default=0, help="render at most this many frames (0 = all)")
    s.add_argument("--lpips_weights", default="", help="--eval: also LPIPS, with the weights in this folder "
                   "(alexnet-owt-7be5be79.pth, lpips' alex.pth); without it LPIPS is listed as skipped")
    s.add_argument("--out", default="", help="new-audio render: the mp4 with sound (default: "
                   "<model>/train/ours_None/renders/<audio stem>.mp4); companions are named beside it")
    s.add_argument("--overwrite", action="store_true", help="replace an existing new-audio render of that name")
    s.add_argument("--quiet", action="store_true", help="only warnings")
    return p


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def _audio_features(path: Path, extractor: str, channels: int) -> tuple[np.ndarray, Path | None]:
    """[T, C, W] features of new audio (decoded and featurised, or a precomputed .npy) and the sound to mux."""
    from data_utils.audio_features import extract_features, load_audio, load_features

    if not path.is_file():
        raise FileNotFoundError(f"Audio does not exist: {path}")
    if path.suffix == ".npy":
        feats = load_features(path, expected_extractor=extractor)
        stem = path.stem.rsplit("_", 1)[0]
        sound = next((c for c in path.parent.glob(stem + ".*") if c.suffix in (".wav", ".flac", ".mp3", ".m4a")), None)
    else:
        samples = load_audio(path)
        if samples.size == 0:
            raise ValueError(f"Audio is empty: {path}")
        if float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) < 1e-4:
            raise ValueError(f"Audio is silent (RMS < 1e-4): {path}; nothing would drive the lips")
        feats = extract_features(samples, extractor)
        sound = path
    _warn_if_short(path, feats.array.shape[0])
    array = feats.array.transpose(0, 2, 1)  # [T, W, C] -> [T, C, W]
    if array.shape[1] != channels:
        raise ValueError(f"{path}: features have {array.shape[1]} channels but the model expects {channels} "
                         f"({extractor} features)")
    return np.ascontiguousarray(array, dtype=np.float32), sound


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


def output_paths(args: argparse.Namespace):
    """Where this run writes: a new-audio render is claimed under its own name (utils/render_paths.py)."""
    from utils.render_paths import claim_render_paths, default_render_path, render_paths, split_render_paths

    if args.audio:
        return claim_render_paths(args.out or default_render_path(args.model_path, args.audio), args.overwrite)
    if args.out:
        render_paths(args.out)  # a bad name is reported first
        raise ValueError("--out names the render of new audio (--audio); --eval and the training split write "
                         f"to {Path(args.model_path)}/{{test,train}}/ours_None/")
    split = "train" if (args.use_train or not args.eval) else "val"
    return split_render_paths(Path(args.model_path) / ("test" if split == "val" else "train") / "ours_None")


def synthesize(args: argparse.Namespace) -> dict:
    """Render, after claiming the output names; a failed run gives back the names it claimed."""
    paths = output_paths(args)
    try:
        return render(args, paths)
    except BaseException:
        paths.release()
        raise


def render(args: argparse.Namespace, paths) -> dict:
    from gaussian_renderer.fused import FusedRenderer
    from gaussian_renderer.render import Views
    from scene.dataset import load_subject
    from scene.sequence import RenderSequence
    from utils.general_utils import resolve_device
    from utils.io_utils import save_json, save_text
    from utils.metrics import FrameMetrics, landmark_metrics, load_lpips_metric, markdown_table
    from utils.video_io import VideoWriter, iter_frames, mux_audio

    model = extract_group(args, ModelParams)
    device = resolve_device(model.device)
    model_path, data_dir = Path(model.model_path), Path(model.source_path)
    renderer = FusedRenderer.from_checkpoint(model_path, device, model.exp_method, model.backend)
    features, sound = None, None
    if model.audio:
        features, sound = _audio_features(Path(model.audio), model.audio_extractor, renderer.audio_channels)
    split = "train" if (args.use_train or not model.eval) else "val"
    data = load_subject(data_dir, split, model.resolution, model.audio_extractor, model.exp_method, device=device,
                        progress=not args.quiet, expression_input=model.expression_input)
    seq = RenderSequence.new_audio(data, features, device) if features is not None else RenderSequence.eval_split(data)
    if split == "train" and features is None:
        seq.has_gt = True
    n_frames = len(seq) if args.max_frames <= 0 else min(len(seq), args.max_frames)
    out_dir = model_path / ("test" if split == "val" else "train") / "ours_None"
    extras = not args.fast
    writers = {"out": VideoWriter(paths.silent)}
    if extras:
        writers["face"] = VideoWriter(paths.face)
        writers["mouth"] = VideoWriter(paths.mouth)
    if seq.has_gt:
        writers["gt"] = VideoWriter(paths.gt)
        if extras:
            writers["side"] = VideoWriter(paths.side)
    lpips_net, lpips_skipped = load_lpips_metric(args.lpips_weights, device) if seq.has_gt else (None, None)
    skipped = {"lpips": lpips_skipped} if lpips_skipped else {}
    metrics = FrameMetrics(lpips=lpips_net) if seq.has_gt else None
    sheet: list[np.ndarray] = []
    sheet_every = max(n_frames // 8, 1)
    render_seconds, t_start = 0.0, time.time()
    from tqdm import tqdm

    bar = tqdm(total=n_frames, desc="render", disable=args.quiet, dynamic_ncols=True)
    try:
        for start, batch in seq.batches(args.batch_size):
            if start >= n_frames:
                break
            keep = min(n_frames - start, batch["viewmats"].shape[0])
            views = Views(batch["viewmats"][:keep], batch["Ks"][:keep], data.width, data.height)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.time()
            out = renderer.render(views, batch["audio_windows"][:keep], batch["expression"][:keep],
                                  batch["background"][:keep], dilate=args.dilate, parts=extras)
            image = out["image"] if extras else out
            if device.type == "cuda":
                torch.cuda.synchronize()
            render_seconds += time.time() - t0
            frames = _to_uint8(image)
            for f in frames:
                writers["out"].write(f)
            if extras:
                for f in _to_uint8(out["face"]):
                    writers["face"].write(f)
                for f in _to_uint8(out["mouth_over_bg"]):
                    writers["mouth"].write(f)
            if seq.has_gt:
                gt = batch["image"][:keep]
                gts = _to_uint8(gt)
                for f in gts:
                    writers["gt"].write(f)
                face_mask = (batch["masks"]["face"][:keep] + batch["masks"]["mouth"][:keep]).clamp(0, 1)
                metrics.add(image, gt, face_mask)
                if extras:
                    err = _to_uint8(((image - gt).abs().mean(-1, keepdim=True) * 4).expand(-1, -1, -1, 3))
                    for r, g, e in zip(frames, gts, err):
                        writers["side"].write(np.concatenate([r, g, e], axis=1))
            for k in range(keep):
                if (start + k) % sheet_every == 0 and len(sheet) < 8:
                    row = [frames[k]] + ([gts[k]] if seq.has_gt else [])
                    sheet.append(np.concatenate(row, axis=0))
            bar.update(keep)
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        bar.close()

    # sound: the val frames' stretch of aud.wav, or the new audio
    muxed = None
    fps = 25.0
    try:
        if sound is None and features is None and (data_dir / "aud.wav").is_file():
            first = int(data.img_ids[seq.rows[0]])
            sound = _cut_audio(data_dir / "aud.wav", first / fps, n_frames / fps, out_dir / "audio.wav")
        if sound is not None:
            muxed = mux_audio(paths.silent, sound, paths.main)
        else:
            logging.warning("no audio to mux (precomputed features without a matching audio file)")
    except RuntimeError as e:  # no ffmpeg on this machine (imageio-ffmpeg missing)
        logging.warning("audio not muxed: %s", e)
    if sheet:
        import cv2

        from utils.io_utils import atomic_path

        with atomic_path(paths.sheet) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(sheet, axis=1), cv2.COLOR_RGB2BGR))
    wall = time.time() - t_start
    result = {"split": split, "frames": n_frames, "render_fps": round(n_frames / max(render_seconds, 1e-9), 1),
              "wall_seconds": round(wall, 2), "out": str(paths.silent),
              "out_with_audio": str(muxed) if muxed else None, "device": str(device)}
    paths.release()  # the claimed name of the sound version when no sound could be muxed
    if metrics is not None:
        result.update(metrics.summary())
        if extras:
            try:
                result.update({f"{k}": v for k, v in landmark_metrics(
                    iter_frames(paths.silent), iter_frames(paths.gt)).items() if k != "frames"})
            except ImportError:
                logging.warning("mediapipe is not installed: LMD and mouth-opening correlation skipped")
                skipped.update(lmd="mediapipe is not installed", mouth_open_corr="mediapipe is not installed")
        else:
            skipped.update(lmd="--fast (no landmark pass)", mouth_open_corr="--fast (no landmark pass)")
        result["skipped"] = skipped
        save_json(out_dir / "metrics.json", result)
        save_text(out_dir / "metrics.md", markdown_table(result))
    result["written"] = [str(p) for p in paths.written()]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = load_combined(parser, argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if not args.model_path:
        print("error: give the trained model folder (-M output/<ID>)", file=sys.stderr)
        return 2
    if not args.source_path:
        print("error: give the processed subject folder (-S data/<ID>)", file=sys.stderr)
        return 2
    try:
        result = synthesize(args)
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
    return 0


if __name__ == "__main__":
    from utils.quiet_logs import quiet_third_party_logs

    quiet_third_party_logs()  # MediaPipe / TFLite / absl lines off the terminal
    sys.exit(main())
