"""Readers for the on-disk formats of the papers' datasets, each returning uint8 arrays.

PNG/JPEG/TIFF/GIF through Pillow, DICOM through pydicom (rescale, VOI window, MONOCHROME1 inverted), JSRT's raw
12-bit big-endian ``.IMG`` files, and the SIIM-ACR run-length masks. A file that cannot be decoded raises
``CorruptFileError`` naming the file, never an exception from deep inside a decoder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BadFileError

JSRT_SHAPE = (2048, 2048)
LUNG_WINDOW = (-600.0, 1500.0)  # CT window centre and width in HU for the RSNA PE slices


class CorruptFileError(BadFileError):
    """A dataset file exists but cannot be decoded; the message names it."""


def read_image(path: str | Path, mode: str = "L") -> np.ndarray:
    """Decode an image file to uint8: ``mode`` "L" (grey, H x W) or "RGB" (H x W x 3).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> Image.fromarray(np.full((4, 6), 7, np.uint8)).save(p)
        >>> read_image(p).shape
        (4, 6)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".dcm", ".dicom"):
        img = read_dicom(path)
        return np.repeat(img[..., None], 3, axis=-1) if mode == "RGB" else img
    if suffix == ".img":
        img = read_jsrt(path)
        return np.repeat(img[..., None], 3, axis=-1) if mode == "RGB" else img
    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I"):  # 16-bit PNGs: scale to the full 8-bit range
                arr = np.asarray(im, dtype=np.float32)
                img = _to_uint8(arr, arr.min(), arr.max())
                return np.repeat(img[..., None], 3, axis=-1) if mode == "RGB" else img
            return np.asarray(im.convert(mode))
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure becomes one readable error
        raise CorruptFileError(f"cannot decode image {path}: {e}") from None


def read_mask(path: str | Path) -> np.ndarray:
    """A binary mask file (GIF/PNG/TIFF) as uint8 0/1: any non-zero pixel is foreground."""
    img = read_image(path, "L")
    return (img > 0).astype(np.uint8)


def _to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    arr = np.clip((arr.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.round(arr * 255).astype(np.uint8)


def read_jsrt(path: str | Path) -> np.ndarray:
    """A JSRT ``.IMG`` file: 2048 x 2048 pixels, 12 bits stored big-endian in 16, larger values darker. Returns
    uint8 with bone bright, as the radiograph is read."""
    path = Path(path)
    raw = np.fromfile(path, dtype=">u2")
    if raw.size != JSRT_SHAPE[0] * JSRT_SHAPE[1]:
        raise CorruptFileError(f"{path}: a JSRT .IMG file holds {JSRT_SHAPE[0]}x{JSRT_SHAPE[1]} 16-bit pixels "
                               f"({2 * JSRT_SHAPE[0] * JSRT_SHAPE[1]} bytes); this one has {path.stat().st_size}")
    img = np.clip(raw.reshape(JSRT_SHAPE), 0, 4095).astype(np.float32)
    return _to_uint8(4095 - img, 0, 4095)


def _dicom(path: Path):
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001
        hint = ""
        if "handler" in str(e).lower() or "decompress" in str(e).lower():
            hint = " (compressed pixel data: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg)"
        raise CorruptFileError(f"cannot decode DICOM {path}: {e}{hint}") from None
    return ds, arr


def _first(value) -> float:
    """The first of a DICOM multi-value (several VOI windows may be stored), as a float."""
    from pydicom.multival import MultiValue

    return float(value[0]) if isinstance(value, (MultiValue, list, tuple)) else float(value)


def read_dicom(path: str | Path) -> np.ndarray:
    """A radiograph in DICOM: modality rescale, the file's VOI window (or its full range), MONOCHROME1 inverted,
    to uint8. Colour DICOMs (RGB) are averaged to grey."""
    from pydicom.pixels import apply_modality_lut

    path = Path(path)
    ds, arr = _dicom(path)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr.mean(-1)
    arr = apply_modality_lut(arr, ds).astype(np.float32)
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centre is not None and width is not None:
        centre, width = _first(centre), _first(width)
        lo, hi = centre - width / 2, centre + width / 2
    else:
        lo, hi = float(arr.min()), float(arr.max())
    img = _to_uint8(arr, lo, hi)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        img = 255 - img
    return img


def read_ct_slice_hu(path: str | Path) -> tuple[np.ndarray, float]:
    """One CT slice in Hounsfield units (float32) and its position along the patient axis (for sorting)."""
    from pydicom.pixels import apply_modality_lut

    path = Path(path)
    ds, arr = _dicom(path)
    hu = apply_modality_lut(arr, ds).astype(np.float32)
    pos = ds.get("ImagePositionPatient")
    z = float(pos[2]) if pos is not None else float(ds.get("InstanceNumber", 0))
    return hu, z


def window(hu: np.ndarray, centre: float = LUNG_WINDOW[0], width: float = LUNG_WINDOW[1]) -> np.ndarray:
    """A CT window to uint8 (lung window by default: centre -600 HU, width 1500 HU)."""
    return _to_uint8(hu, centre - width / 2, centre + width / 2)


def rle_decode(rle: str, height: int, width: int) -> np.ndarray:
    """Decode a SIIM-ACR run-length string into a uint8 (height, width) mask.

    The string holds pairs "start length" where each start is counted from the end of the previous run (relative
    offsets) and pixels are numbered column by column (column-major). "-1" or an empty string is an empty mask.

    Example:
        >>> rle_decode("1 2 3 1", 3, 3)  # pixels 1-2 (column 0, rows 1-2) and 6 (column 2, row 0)
        array([[0, 0, 1],
               [1, 0, 0],
               [1, 0, 0]], dtype=uint8)
    """
    flat = np.zeros(height * width, np.uint8)
    text = str(rle).strip()
    if text in ("", "-1", "nan"):
        return flat.reshape(width, height).T.copy()
    try:
        values = np.array([int(v) for v in text.split()], dtype=np.int64)
    except ValueError:
        raise CorruptFileError(f"run-length string is not a list of integers: {text[:40]!r}") from None
    if len(values) % 2:
        raise CorruptFileError(f"run-length string has an odd number of values ({len(values)})")
    pos = 0
    for start, length in zip(values[0::2], values[1::2]):
        pos += int(start)
        if pos + length > flat.size or start < 0 or length < 0:
            raise CorruptFileError(f"run-length run {start} {length} leaves the {height}x{width} image")
        flat[pos:pos + length] = 1
        pos += int(length)
    return flat.reshape(width, height).T.copy()


def rle_encode(mask: np.ndarray) -> str:
    """The inverse of ``rle_decode`` (relative offsets, column-major); "-1" for an empty mask."""
    flat = np.asarray(mask).T.reshape(-1).astype(bool)
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if not len(starts):
        return "-1"
    out, prev_end = [], 0
    for s, e in zip(starts, ends):
        out += [int(s - prev_end), int(e - s)]
        prev_end = e
    return " ".join(map(str, out))


def resize(img: np.ndarray, size: int, *, mask: bool = False) -> np.ndarray:
    """Resize a uint8 image (H x W or H x W x C) to size x size: area-averaging for images, nearest for masks."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    im = Image.fromarray(img)
    return np.asarray(im.resize((size, size), Image.NEAREST if mask else Image.BOX if min(img.shape[:2]) >= size
                                else Image.BILINEAR))
