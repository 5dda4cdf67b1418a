"""Thumbnails of stored photos, made once and kept in the blob store.

A thumbnail is a JPEG no larger than `size` x `size`, upright (the EXIF orientation applied to
the pixels), without EXIF (no GPS leaves through a thumbnail), kept under
``thumbs/<size>/<sha256>.jpg``. Its bytes depend only on the original's, so it never changes:
serve it with a long cache lifetime. HEIC/HEIF photos (iPhones) are read through pillow-heif.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from forms.photos import open_image

from .blobs import BlobStore, BlobStoreError, blob_key
from .errors import BlobUnavailable, InvalidInput, NotFound

SIZES = (320, 1280)
JPEG_QUALITY = 82
CONTENT_TYPE = "image/jpeg"


def thumbnail_key(size: int, sha256: str) -> str:
    """Store key of a thumbnail; `size` must be one of `SIZES`, `sha256` a blob digest."""
    if size not in SIZES:
        raise InvalidInput(f"Thumbnail size must be one of {', '.join(map(str, SIZES))}.")
    blob_key(sha256)  # ValueError unless 64 lowercase hex digits
    return f"thumbs/{size}/{sha256}.jpg"


def ensure_thumbnail(blobs: BlobStore, sha256: str, size: int) -> str:
    """The key of the thumbnail of blob `sha256`, making and storing it on first use.

    Raises NotFound when the original is not in the store, InvalidInput when it is not an image
    Pillow can read, BlobUnavailable when the store fails."""
    key = thumbnail_key(size, sha256)
    try:
        if blobs.exists(key):
            return key
        try:
            data = blobs.read_bytes(blob_key(sha256))
        except KeyError:
            raise NotFound("photo") from None
        thumbnail = render_thumbnail(data, size)
        blobs.put_bytes(key, thumbnail, CONTENT_TYPE)
    except BlobStoreError as error:
        raise BlobUnavailable(f"The file store is unavailable: {error}") from error
    return key


def render_thumbnail(data: bytes, size: int) -> bytes:
    """JPEG bytes of the image fitted into `size` x `size`, upright, RGB, without metadata."""
    try:
        with open_image(data) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, still >= size
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((size, size), Image.Resampling.LANCZOS)
            icc_profile = image.info.get("icc_profile")
            if not isinstance(icc_profile, bytes) or icc_profile[16:20] != b"RGB ":
                icc_profile = None  # a CMYK or grey profile would be wrong on RGB pixels
            rgb = _flatten(upright)
    except Image.UnidentifiedImageError:
        raise InvalidInput("The file is not an image.") from None
    except Image.DecompressionBombError:
        raise InvalidInput("The image has too many pixels to make a thumbnail.") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or malformed image data
        raise InvalidInput(f"The image could not be decoded: {error}") from None
    out = io.BytesIO()
    rgb.save(
        out, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True, icc_profile=icc_profile
    )
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with transparent parts on white (a PNG screenshot or a drawing)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")
