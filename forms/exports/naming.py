"""File names in exports: safe pieces of names (`safe_part`, `short_id`), extensions, Central's
sanitize-filename, and the names one archive already holds (`UsedNames`)."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9-]+")
_SANITIZE = re.compile(r'[/\?<>\\:\*\|"\x00-\x1f\x80-\x9f]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


def safe_part(text: str, limit: int) -> str:
    """A piece of a file name: ASCII letters, digits and `-`, everything else `_`; never `.`
    or a path; at most `limit` characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE_CHARS.sub("_", ascii_text).strip("_-")[:limit].strip("_-")


def short_id(instance_id: str) -> str:
    plain = instance_id.removeprefix("uuid:")
    return safe_part(plain, 8) or "tanpa_id"


def extension(name: str, content_type: str | None) -> str:
    suffix = name.rsplit(".", 1)[1].lower() if "." in name else ""
    if re.fullmatch(r"[a-z0-9]{1,8}", suffix):
        return suffix
    guessed = mimetypes.guess_extension(content_type or "") or ""
    return guessed.lstrip(".") or "bin"


def sanitize_filename(name: str) -> str:
    """What npm's sanitize-filename (Central's) makes of a name: no path separators, control
    or reserved characters, no `.`/`..`, no Windows device names or trailing dots and spaces,
    at most 255 bytes."""
    clean = _SANITIZE.sub("", name)
    if clean in (".", "..") or _WINDOWS_RESERVED.match(clean):
        return ""
    clean = clean.rstrip(". ")
    while len(clean.encode("utf-8")) > 255:
        clean = clean[:-1]
    return clean


class UsedNames:
    """The names one archive already holds, in dicts keyed by the name case aside
    (`str.lower`): unzipped on Windows or macOS, `a.jpg` and `A.jpg` are one file, so one of
    them would be lost. (About 0.5 KB a name: some 20 MB for the 40k photos of 20k visits.)"""

    def __init__(self) -> None:
        self.used: dict[str, tuple[str, str]] = {}  # key -> (the name as first claimed, tag)
        self.lost: set[str] = set()  # keys whose bytes could not be written
        self.taken: dict[str, int] = {}  # `unique`: key -> how many times asked for

    def claim(self, name: str, tag: str = "") -> tuple[str, str]:
        """The state of `name` for `tag` and the name as first claimed (its case may differ):
        `new` (now taken), `same` (taken with this tag), `lost` (taken with this tag, but its
        bytes were lost: see `lose`) or `other` (taken with another tag)."""
        key = name.lower()
        held = self.used.get(key)
        if held is None:
            self.used[key] = (name, tag)
            return "new", name
        if held[1] != tag:
            return "other", held[0]
        return ("lost" if key in self.lost else "same"), held[0]

    def lose(self, name: str) -> None:
        """The file claimed as `name` could not be written (its bytes are lost): the name stays
        taken, and a later claim of it with the same tag is `lost`, not `same`."""
        self.lost.add(name.lower())

    def unique(self, stem: str, ext: str) -> str:
        """`stem.ext` the first time, then `stem~2.ext`, `stem~3.ext`... (counted case aside).
        Stems never hold `~` (safe_part), so a numbered name cannot be another stem's first
        one."""
        name = f"{stem}.{ext}"
        key = name.lower()
        count = self.taken[key] = self.taken.get(key, 0) + 1
        return name if count == 1 else f"{stem}~{count}.{ext}"
