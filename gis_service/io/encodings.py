"""Which text encoding a CSV or a Shapefile's DBF is in, decided once and said out loud.

A county bureau's files come from old ArcGIS and MapGIS installations and from Excel on Chinese Windows: GBK
(code page 936) without a ``.cpg`` and with no code page in the DBF header is the common case, and GDAL reads such
a DBF as ISO-8859-1, storing 梅江新村 as ``Ã·½­ÐÂ´å`` without a word. So the encoding is decided here, in this
order, and the import prints the sentence :attr:`Decoding.reason`:

1. ``--encoding NAME`` (the user knows best);
2. a ``.cpg`` beside the file (``UTF-8``, ``936``, ``GBK``, ``ANSI 936`` …);
3. a DBF's language-driver byte (header byte 29: 0x4D and 0x7A are GBK, 0x4F and 0x78 Big5 …); 0x00 says nothing and
   0x57 only "the writer's Windows code page", so both fall through;
4. strict UTF-8 (a byte-order mark is allowed and dropped); then strict GB18030 (a superset of GBK and GB2312, so
   it also reads the characters GBK lacks, such as 𠮷 or 㘵). Big5 and Latin-1 text often decodes as GB18030 too,
   as rare characters, kana and Greek letters: text whose non-ASCII characters are mostly outside the common Chinese
   characters of GB2312 is refused as "probably another encoding".

A declared encoding is decoded strictly as well: a file it does not fit is refused, never patched with U+FFFD.
Every refusal names ``--encoding``; no codec message reaches the user.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gis_service.errors import InvalidInputError

#: DBF language-driver ids (header byte 29) that name a code page (dBase/Visual FoxPro, as ArcGIS writes them),
#: with the Python codec. 0x00 (none) and 0x57 (the writer's ANSI code page, unnamed) are not here on purpose.
LANGUAGE_DRIVERS: dict[int, tuple[str, str]] = {
    0x4D: ("gb18030", "GBK (code page 936)"),
    0x7A: ("gb18030", "GBK (code page 936)"),
    0x4F: ("big5", "Big5 (code page 950)"),
    0x78: ("big5", "Big5 (code page 950)"),
    0x4E: ("cp949", "Korean (code page 949)"),
    0x79: ("cp949", "Korean (code page 949)"),
    0x13: ("cp932", "Japanese (code page 932)"),
    0x7B: ("cp932", "Japanese (code page 932)"),
    0x01: ("cp437", "DOS (code page 437)"),
    0x02: ("cp850", "DOS Latin-1 (code page 850)"),
    0x03: ("cp1252", "Windows Latin-1 (code page 1252)"),
    0x58: ("cp1252", "Windows Latin-1 (code page 1252)"),
    0x59: ("cp1252", "Windows Latin-1 (code page 1252)"),
    0xC8: ("cp1250", "Windows Central European (code page 1250)"),
    0xC9: ("cp1251", "Windows Cyrillic (code page 1251)"),
}
#: Language-driver id written into the DBFs the service exports in GBK, for tools that ignore the .cpg.
GBK_LANGUAGE_DRIVER = 0x4D

#: How a .cpg (or --encoding) may name the Chinese encodings; anything else goes to Python's codec registry.
_ALIASES = {"936": "gb18030", "cp936": "gb18030", "ansi936": "gb18030", "gbk": "gb18030", "gb2312": "gb18030",
            "gb18030": "gb18030", "54936": "gb18030", "65001": "utf-8", "utf8": "utf-8", "utf-8": "utf-8",
            "950": "big5", "cp950": "big5", "ansi950": "big5", "big5": "big5", "88591": "latin-1",
            "iso88591": "latin-1", "latin1": "latin-1", "1252": "cp1252", "ansi1252": "cp1252"}
#: Share of non-ASCII characters that may lie outside GB2312's common characters before GB18030 text is taken for
#: another encoding (Big5 read as GBK gives about half kana, Greek and rare characters; real GBK files under 1 %).
MAX_UNCOMMON_SHARE = 0.2


@dataclass(frozen=True)
class Decoding:
    """The codec a file is read with (a Python codec name) and the sentence saying why."""

    codec: str
    reason: str

    @property
    def gdal_name(self) -> str:
        """The name GDAL (iconv) knows the codec by."""
        return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gb18030": "GB18030", "big5": "BIG5",
                "latin-1": "ISO-8859-1"}.get(self.codec, codecs.lookup(self.codec).name.upper())


def codec_for(name: str, *, source: str) -> str:
    """The Python codec for an encoding as a user or a .cpg writes it ('GBK', '936', 'UTF-8', 'ANSI 936').

    GBK, GB2312 and code page 936 are read as GB18030, which contains them. InvalidInputError for an unknown name.
    """
    key = name.strip().lower().replace(" ", "").replace("_", "")
    codec = _ALIASES.get(key) or _ALIASES.get(key.replace("-", ""))
    if codec is None:
        try:
            codec = codecs.lookup(name.strip()).name
        except LookupError:
            raise InvalidInputError(f"unknown encoding {name.strip()!r} ({source}); name one Python knows, e.g. "
                                    "--encoding gbk, --encoding utf-8 or --encoding big5") from None
    return codec


def cpg_codec(said: str | None, *, name: str) -> tuple[str, str] | None:
    """(codec, reason) from the text of a ``.cpg`` (``name`` is the file's), or None when there is none or it is
    empty."""
    said = (said or "").strip()
    if not said:
        return None
    return codec_for(said, source=f"from {name}"), f"from the .cpg beside it ({said})"


def read_cpg(path: Path) -> str | None:
    """The text of the ``.cpg`` beside ``path``, or None."""
    cpg = next((p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.exists()), None)
    return None if cpg is None else cpg.read_bytes()[:100].decode("ascii", errors="replace")


def choose(samples: Iterable[bytes], *, what: str, override: str | None = None,
           declared: tuple[str, str] | None = None) -> Decoding:
    """The encoding of text whose non-ASCII pieces are ``samples`` (each decoded on its own: DBF fields, or a whole
    CSV file), as the module docstring orders it. ``declared`` is (codec, reason) from a .cpg or a DBF header.
    InvalidInputError, naming --encoding, when the text fits none."""
    samples = [s for s in samples if not s.isascii()]
    if override is not None:
        codec = codec_for(override, source="--encoding")
        _require(samples, codec, what=what, reason=f"--encoding {override}")
        return Decoding(codec, f"{_title(codec)}: from --encoding {override}")
    if declared is not None:
        codec, reason = declared
        _require(samples, codec, what=what, reason=reason)
        return Decoding(codec, f"{_title(codec)}: {reason}")
    if not samples:
        return Decoding("utf-8", "UTF-8: the file holds only ASCII text")
    if _bad_sample(samples, "utf-8") is None:
        return Decoding("utf-8", "UTF-8: the file is valid UTF-8")
    bad = _bad_sample(samples, "gb18030")
    if bad is not None:
        raise InvalidInputError(f"{what} is neither UTF-8 nor GBK/GB18030 text (bytes {_hex(bad)} fit neither) and "
                                "does not say its encoding; pass --encoding NAME (e.g. --encoding big5, "
                                "--encoding latin-1), or save it from Excel as 'CSV UTF-8'")
    share, example = _uncommon_share(samples)
    if share > MAX_UNCOMMON_SHARE:
        raise InvalidInputError(f"{what} is not valid UTF-8, and read as GBK/GB18030 {share:.0%} of its Chinese text "
                                f"would be rare characters or symbols (e.g. {_shown(example)}): it is probably in "
                                "another encoding, such as Big5 (Traditional Chinese) or Latin-1; pass --encoding NAME "
                                "(e.g. --encoding big5)")
    return Decoding("gb18030", "GB18030: the file is not valid UTF-8 and has no .cpg or code page")


def _require(samples: list[bytes], codec: str, *, what: str, reason: str) -> None:
    bad = _bad_sample(samples, codec)
    if bad is not None:
        raise InvalidInputError(f"{what} is not valid {_title(codec)} as {reason} says (bytes {_hex(bad)} are not "
                                f"{_title(codec)}); pass --encoding NAME with the encoding it is really in "
                                "(e.g. --encoding gbk, --encoding utf-8)")


def _bad_sample(samples: list[bytes], codec: str) -> bytes | None:
    """The first bytes of ``samples`` that ``codec`` cannot decode strictly (a few around the fault), or None."""
    for sample in samples:
        try:
            sample.decode(codec)
        except UnicodeDecodeError as exc:
            return sample[exc.start:exc.start + 4]
    return None


def _uncommon_share(samples: list[bytes]) -> tuple[float, str]:
    """Among the non-ASCII characters of ``samples`` read as GB18030: the share that are neither GB2312's Chinese
    characters and punctuation nor characters GB18030 writes in four bytes (outside GBK), and one of them."""
    total = uncommon = 0
    example = ""
    for sample in samples:
        for char in sample.decode("gb18030"):
            if char.isascii():
                continue
            total += 1
            if not _common(char):
                uncommon += 1
                example = example or char
    return (uncommon / total if total else 0.0), example


def _common(char: str) -> bool:
    try:
        first = char.encode("gb2312")[0]
    except UnicodeEncodeError:
        return len(char.encode("gb18030")) == 4  # outside GBK: only a real GB18030 file holds it
    return first >= 0xB0 or first in (0xA1, 0xA3)  # Chinese characters; CJK and full-width punctuation


def _shown(char: str) -> str:
    """A character for a message: itself when it shows, and its code point (U+E78B is a private-use character)."""
    code = f"U+{ord(char):04X}"
    return f"{char} ({code})" if char.isprintable() and not 0xE000 <= ord(char) <= 0xF8FF else code


def _title(codec: str) -> str:
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gb18030": "GB18030", "big5": "Big5",
            "latin-1": "Latin-1"}.get(codec, codec)


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02X}" for b in data)


# -- CSV -------------------------------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig", "UTF-8"), (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
         (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"))


def decode_text_file(path: Path, *, override: str | None = None) -> tuple[str, Decoding]:
    """The text of a CSV file and how it was decoded (see the module docstring); a byte-order mark is honoured
    and removed."""
    data = Path(path).read_bytes()
    if override is None:
        for bom, codec, title in _BOMS:
            if data.startswith(bom):
                try:
                    return data.decode(codec).removeprefix("\ufeff"), Decoding(codec, f"{title}: the file starts "
                                                                                     "with a byte-order mark")
                except UnicodeDecodeError as exc:
                    raise InvalidInputError(f"{Path(path).name} starts with a {title} byte-order mark but is not "
                                            f"valid {title} (bytes {_hex(data[exc.start:exc.start + 4])}); pass "
                                            "--encoding NAME with the encoding it is really in") from None
    declared = cpg_codec(read_cpg(Path(path)), name=Path(path).with_suffix(".cpg").name)
    decoding = choose([data], what=Path(path).name, override=override, declared=declared)
    return data.decode(decoding.codec).removeprefix("\ufeff"), decoding


# -- DBF -------------------------------------------------------------------------------------------------------

def dbf_decoding(dbf: bytes, *, name: str, cpg: str | None = None, override: str | None = None) -> Decoding:
    """How to read the text of a Shapefile's DBF (its bytes; ``name`` for messages): --encoding, its .cpg (the
    text of it), its language-driver byte, or what its text fields' bytes fit."""
    declared = cpg_codec(cpg, name=name.rsplit(".", 1)[0] + ".cpg")
    if declared is None and len(dbf) >= 32 and dbf[29] in LANGUAGE_DRIVERS:
        codec, title = LANGUAGE_DRIVERS[dbf[29]]
        declared = (codec, f"the DBF's language driver 0x{dbf[29]:02X} says {title}")
    return choose(dbf_text_fields(dbf), what=name, override=override, declared=declared)


def dbf_text_fields(dbf: bytes) -> Iterator[bytes]:
    """The raw bytes of every character field of every record of a dBase III file (as Shapefiles use)."""
    if len(dbf) < 32:
        return
    records, header_length, record_length = struct.unpack("<IHH", dbf[4:12])
    fields = []
    offset = 1  # the deletion flag
    for start in range(32, min(header_length, len(dbf)) - 31, 32):
        descriptor = dbf[start:start + 32]
        if descriptor[0] == 0x0D:
            break
        if chr(descriptor[11]) == "C":
            fields.append((offset, descriptor[16]))
        offset += descriptor[16]
    for n in range(records if fields and record_length else 0):
        record = dbf[header_length + n * record_length:header_length + (n + 1) * record_length]
        if len(record) < record_length:
            return
        for field_offset, width in fields:
            yield record[field_offset:field_offset + width].rstrip(b" \x00")
