"""Reading and (atomically) writing the image and label files of the DGSS datasets.

* ``read_image``: any PNG/JPEG -> H×W×3 uint8 RGB (Pillow; torchvision as a fallback).
* ``read_label``: a single-channel id PNG (mode ``L``/``P``/16-bit grey) -> H×W ints. Palette
  PNGs (GTAV, Mapillary) give their palette *indices*, which are the class ids. Multi-channel
  16-bit PNGs (Synthia ``GT/LABELS``) are decoded by torchvision with all 16 bits kept, because
  Pillow silently truncates 16-bit RGB to its high byte (every Synthia id would read as 0).
* ``image_size``: (width, height) from the file header only (cheap, used by ``verify``).
* ``write_png`` / ``write_jpg``: write to a temporary file then ``os.replace`` it, so an
  interrupted prepare script never leaves a half-written output behind.
* ``is_valid_png``: an existing output is complete (CRC-checked) and of the expected size;
  prepare scripts skip such outputs, which makes them resumable and idempotent.
* ``LabelJob`` / ``convert_label`` / ``run_jobs`` / ``summarize``: the batch conversion loop
  of the prepare scripts (tqdm, ``--workers N`` processes, errors collected and reported).

Every failure raises ``ImageReadError`` naming the file (``base.py`` turns it into a
``DatasetError`` with a fix). Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

try:  # Pillow ships with torchvision / matplotlib; torchvision.io is the fallback
    from PIL import Image
    HAVE_PIL = True
except ImportError:  # pragma: no cover - exercised only without Pillow
    Image = None
    HAVE_PIL = False

PathLike = str | os.PathLike


class ImageReadError(OSError):
    """An image or label file could not be read (missing, truncated, corrupt, wrong kind)."""


def _png_header(path: PathLike) -> tuple[int, int, int, int] | None:
    """(width, height, bit_depth, colour_type) of a PNG, or None if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(29)
    if len(head) < 29 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype = struct.unpack(">IIBB", head[16:26])
    return w, h, depth, ctype


def _torchvision_decode(path: PathLike, rgb: bool) -> np.ndarray:
    from torchvision.io import ImageReadMode, decode_image, read_file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mode = ImageReadMode.RGB if rgb else ImageReadMode.UNCHANGED
        t = decode_image(read_file(str(path)), mode=mode)
    return t.permute(1, 2, 0).numpy()  # H×W×C


def read_image(path: PathLike) -> np.ndarray:
    """An RGB image as an H×W×3 uint8 array; ``ImageReadError`` names the file if it is bad."""
    try:
        if HAVE_PIL:
            with Image.open(path) as im:
                im.load()  # full decode: truncated files fail here, not later
                arr = np.array(im.convert("RGB"))
        else:
            arr = _torchvision_decode(path, rgb=True)
    except FileNotFoundError as e:
        raise ImageReadError(f"image file not found: {path}") from e
    except Exception as e:  # PIL raises OSError/SyntaxError/ValueError for broken files
        raise ImageReadError(f"cannot decode image {path} ({type(e).__name__}: {e}); "
                             "the file is truncated or corrupt") from e
    if arr.dtype != np.uint8:
        raise ImageReadError(f"image {path} is not 8-bit (dtype {arr.dtype})")
    return np.ascontiguousarray(arr)


def read_label(path: PathLike, channel: int | None = None) -> np.ndarray:
    """A label map as a 2-D integer array (uint8, or uint16 for 16-bit files).

    ``channel`` selects one channel of a multi-channel label (Synthia: 0, the class id);
    without it a colour label is an error (it is usually a ``*_color.png`` picked by mistake).
    """
    try:
        header = _png_header(path)
        if header is not None and header[2] == 16 and header[3] in (2, 4, 6):
            arr = _torchvision_decode(path, rgb=False)  # keeps all 16 bits
        elif HAVE_PIL:
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                arr = np.array(im)  # 'P' -> palette indices, 'I;16' -> uint16
        else:
            arr = _torchvision_decode(path, rgb=False)
    except FileNotFoundError as e:
        raise ImageReadError(f"label file not found: {path}") from e
    except Exception as e:
        raise ImageReadError(f"cannot decode label {path} ({type(e).__name__}: {e}); "
                             "the file is truncated or corrupt") from e
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3:
        if channel is None:
            raise ImageReadError(
                f"label {path} has {arr.shape[2]} channels; expected a single-channel id png "
                "(a *_color.png visualisation instead of the id/trainId file?)")
        arr = arr[:, :, channel]
    elif channel not in (None, 0):
        raise ImageReadError(f"label {path} has one channel; cannot take channel {channel}")
    if arr.dtype.kind not in "ui":
        raise ImageReadError(f"label {path} has non-integer pixels ({arr.dtype})")
    if arr.dtype not in (np.uint8, np.uint16):
        if arr.min() < 0 or arr.max() > 65535:
            raise ImageReadError(f"label {path} has values outside 0..65535")
        arr = arr.astype(np.uint16)
    return np.ascontiguousarray(arr)


def image_size(path: PathLike) -> tuple[int, int]:
    """(width, height) read from the header only."""
    header = _png_header(path)
    if header is not None:
        return header[0], header[1]
    try:
        if HAVE_PIL:
            with Image.open(path) as im:
                return im.size
        arr = _torchvision_decode(path, rgb=False)
        return arr.shape[1], arr.shape[0]
    except FileNotFoundError as e:
        raise ImageReadError(f"file not found: {path}") from e
    except Exception as e:
        raise ImageReadError(f"cannot read the header of {path} ({e}); corrupt file") from e


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _atomic(path: PathLike, save) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_png(path: PathLike, arr: np.ndarray) -> Path:
    """Write an H×W (8-bit ids) or H×W×3 uint8 array as PNG, atomically."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"{path}: values outside 0..255 cannot be written as 8-bit png")
        arr = arr.astype(np.uint8)

    def save(tmp: Path) -> None:
        if HAVE_PIL:
            Image.fromarray(arr).save(tmp, format="PNG")
        else:
            import torch
            from torchvision.io import encode_png, write_file
            t = torch.from_numpy(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                write_file(str(tmp), encode_png(t))
    return _atomic(path, save)


def write_jpg(path: PathLike, arr: np.ndarray, quality: int = 95) -> Path:
    """Write an H×W×3 uint8 RGB array as JPEG, atomically."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)

    def save(tmp: Path) -> None:
        if HAVE_PIL:
            Image.fromarray(arr).save(tmp, format="JPEG", quality=quality)
        else:
            import torch
            from torchvision.io import encode_jpeg, write_file
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                data = encode_jpeg(torch.from_numpy(arr.transpose(2, 0, 1).copy()), quality=quality)
                write_file(str(tmp), data)
    return _atomic(path, save)


def resize_array(arr: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    """Resize an H×W or H×W×3 uint8 array to ``size=(width, height)``.

    Nearest: pixel-centre sampling ``src = floor((dst + 0.5) * in / out)`` (as Pillow), done in
    numpy so labels never get new values; otherwise bicubic (Pillow, torch as a fallback)."""
    w, h = size
    if nearest:
        ys = np.minimum(((np.arange(h) + 0.5) * arr.shape[0] / h).astype(np.int64), arr.shape[0] - 1)
        xs = np.minimum(((np.arange(w) + 0.5) * arr.shape[1] / w).astype(np.int64), arr.shape[1] - 1)
        return np.ascontiguousarray(arr[ys][:, xs])
    if HAVE_PIL:
        return np.array(Image.fromarray(arr).resize(size, Image.BICUBIC))
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(np.ascontiguousarray(arr)).float()
    x = x[None, None] if arr.ndim == 2 else x.permute(2, 0, 1)[None]
    out = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)[0]
    out = out.round().clamp(0, 255).to(torch.uint8)
    return (out[0] if arr.ndim == 2 else out.permute(1, 2, 0)).numpy()


def is_valid_image(path: PathLike, size: tuple[int, int] | None = None) -> bool:
    """True if ``path`` (png or jpg) decodes completely and has ``size`` (w, h) if given."""
    path = Path(path)
    if not path.is_file():
        return False
    if _png_header(path) is not None:
        return is_valid_png(path, size)
    try:
        arr = read_image(path)
    except ImageReadError:
        return False
    return size is None or (arr.shape[1], arr.shape[0]) == tuple(size)


def is_valid_png(path: PathLike, size: tuple[int, int] | None = None) -> bool:
    """True if ``path`` is a complete PNG (chunks CRC-checked) of ``size`` (w, h) if given."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        header = _png_header(path)
        if header is None or (size is not None and tuple(header[:2]) != tuple(size)):
            return False
        if HAVE_PIL:
            with Image.open(path) as im:
                im.verify()
        else:
            read_label(path)
        return True
    except Exception:
        return False


# --------------------------------------------------------------------------- prepare helpers
@dataclass(frozen=True)
class LabelJob:
    """Convert one label file to an 8-bit trainId png (resumable: a valid ``dst`` is kept)."""

    src: Path
    dst: Path
    fmt: Any  # base.LabelFormat: .to_train_ids(raw, path), .channel
    size: tuple[int, int] | None = None  # (w, h) to resize to with nearest; None = keep
    stats: bool = False  # also return the per-trainId pixel counts (rare class sampling)
    note: str = ""  # reported by ``summarize`` (e.g. a GTAV label resized to its image)


def convert_label(job: LabelJob) -> dict[str, Any]:
    expected = job.size or image_size(job.src)
    if is_valid_png(job.dst, expected):
        status, train = "skipped", (read_label(job.dst) if job.stats else None)
    else:
        train = job.fmt.to_train_ids(read_label(job.src, job.fmt.channel), job.src)
        if (train.shape[1], train.shape[0]) != tuple(expected):
            train = resize_array(train, tuple(expected), nearest=True)
        write_png(job.dst, train)
        status = "written"
    out: dict[str, Any] = {"status": status, "file": str(job.dst)}
    if job.stats:
        from .labels import count_classes
        out["stats"] = count_classes(train)
    if job.note:
        out["note"] = job.note
    return out


def _safe_call(fn: Callable[[Any], dict], job: Any) -> dict[str, Any]:
    try:
        return fn(job)
    except (OSError, ValueError) as e:  # DatasetError is a ValueError
        return {"status": "error", "error": f"{type(e).__name__}: {e}", "job": str(job)}


def run_jobs(fn: Callable[[Any], dict], jobs: Sequence[Any], workers: int = 1, desc: str = "",
             progress: bool = True) -> list[dict[str, Any]]:
    """Run ``fn`` (a module-level function) on every job with a tqdm bar, in ``workers``
    processes if > 1. Failures are collected as ``{"status": "error"}`` results, never skipped."""
    from tqdm.auto import tqdm
    call = partial(_safe_call, fn)
    if workers <= 1 or len(jobs) < 2:
        return [call(j) for j in tqdm(jobs, desc=desc, disable=not progress)]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=workers) as ex:
        return list(tqdm(ex.map(call, jobs, chunksize=8), total=len(jobs), desc=desc,
                         disable=not progress))


def summarize(results: Sequence[dict[str, Any]], title: str, log: Callable[[str], None] = print) -> int:
    """Print 'written / skipped / errors' and every error; return the exit code (0 ok, 1 errors)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    log(f"{title}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) if counts
        else f"{title}: nothing to do")
    notes = [r["note"] for r in results if r.get("note")]
    for n in notes[:20]:
        log(f"  NOTE {n}")
    if len(notes) > 20:
        log(f"  ... and {len(notes) - 20} more notes")
    errors = [r for r in results if r["status"] == "error"]
    for r in errors[:50]:
        log(f"  ERROR {r['error']}")
    if len(errors) > 50:
        log(f"  ... and {len(errors) - 50} more errors")
    return 1 if errors else 0
