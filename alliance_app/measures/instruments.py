"""Instrument definitions: what a client is asked, and the cut-offs that make a score meaningful.

Instruments are data, not code (DESIGN.md §2, "Licensing"): we ship our own wording as JSON in
`fixtures/instruments/`, and an organisation holding a licence for the official ORS/SRS text drops
JSON files with the same codes into its own directory, which replace ours in the catalogue.

A scale in another language is an instrument of its own (code, wording, "language") that names
the instrument it translates ("translation_of"). The catalogue checks that it asks the same
items with the same cut-offs, so a client's ratings in two languages are one course of ratings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "instruments"
# The language every scale exists in: a client whose language has no version of it gets this one.
FALLBACK_LANGUAGE = "en"

# Codes are stored in the database and item keys become form field names: keep both plain.
_CODE_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
_ITEM_KEY_RE = re.compile(r"[a-z][a-z0-9_]*")

_REQUIRED_KEYS = frozenset(
    {
        "code",
        "scale",
        "title",
        "instructions",
        "language",
        "age_bands",
        "faces",
        "cutoff",
        "reliable_change",
        "norms",
        "source",
        "items",
    }
)
_OPTIONAL_KEYS = frozenset({"item_max", "translation_of"})
_ITEM_KEYS = frozenset({"key", "label", "low_anchor", "high_anchor"})
_NORMS_KEYS = frozenset(
    {"clinical_mean", "clinical_sd", "functional_mean", "functional_sd", "reliability"}
)


class Scale(StrEnum):
    """Outcome = how the past week went (ORS style); session = the alliance today (SRS style)."""

    OUTCOME = "outcome"
    SESSION = "session"


class AgeBand(StrEnum):
    """Age bands have their own wording and, for outcome scales, their own cut-offs (§2)."""

    ADULT = "adult"
    ADOLESCENT = "adolescent"
    CHILD = "child"


class InstrumentError(ValueError):
    """An instrument definition is unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class Item:
    """One visual-analogue line: a short heading and the words at its two ends."""

    key: str
    label: str
    low_anchor: str
    high_anchor: str

    def __post_init__(self) -> None:
        if not _ITEM_KEY_RE.fullmatch(self.key):
            raise ValueError(f"item key {self.key!r} must be lower-case letters, digits or _")
        for name in ("label", "low_anchor", "high_anchor"):
            if not getattr(self, name).strip():
                raise ValueError(f"item {self.key!r}: {name} is empty")


@dataclass(frozen=True)
class Norms:
    """Clinical and functional population parameters for the Jacobson-Truax formulas (change.py)."""

    clinical_mean: float
    clinical_sd: float
    functional_mean: float
    functional_sd: float
    reliability: float

    def __post_init__(self) -> None:
        if not (self.clinical_sd > 0 and self.functional_sd > 0):
            raise ValueError("norms: standard deviations must be positive")
        if not 0 <= self.reliability < 1:
            raise ValueError("norms: reliability must be in [0, 1)")


@dataclass(frozen=True)
class Instrument:
    """A complete scale definition; invariants are checked here so no path builds a bad one."""

    code: str
    scale: Scale
    title: str
    instructions: str
    language: str
    age_bands: tuple[AgeBand, ...]
    faces: bool
    items: tuple[Item, ...]
    cutoff: Decimal
    reliable_change: Decimal | None
    norms: Norms | None
    source: str
    item_max: Decimal = Decimal("10.0")
    translation_of: str | None = None  # the code of the instrument this one translates

    def __post_init__(self) -> None:
        if not _CODE_RE.fullmatch(self.code):
            raise ValueError(f"code {self.code!r} must be lower-case letters, digits or -")
        if self.translation_of is not None and not _CODE_RE.fullmatch(self.translation_of):
            raise ValueError(f"translation_of {self.translation_of!r} is not an instrument code")
        if self.translation_of == self.code:
            raise ValueError("an instrument cannot be a translation of itself")
        for name in ("title", "instructions", "language", "source"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} is empty")
        if not self.age_bands or len(set(self.age_bands)) != len(self.age_bands):
            raise ValueError("age_bands must be non-empty and without repeats")
        if not self.items:
            raise ValueError("an instrument needs at least one item")
        if len(set(self.item_keys)) != len(self.item_keys):
            raise ValueError(f"duplicate item keys in {list(self.item_keys)}")
        if not self.item_max > 0:
            raise ValueError("item_max must be positive")
        if not 0 <= self.cutoff <= self.max_total:
            raise ValueError(f"cutoff {self.cutoff} is outside 0..{self.max_total}")
        if self.reliable_change is not None and not self.reliable_change > 0:
            raise ValueError("reliable_change must be positive or null")

    @property
    def max_total(self) -> Decimal:
        return self.item_max * len(self.items)

    @property
    def item_keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.items)

    @property
    def family(self) -> str:
        """The code shared by all language versions of this scale: the original's."""
        return self.translation_of or self.code

    def measures_like(self, other: Instrument) -> bool:
        """Whether ratings on the two can be compared as ratings on one scale: the same items,
        range, age bands and cut-offs, whatever the words."""
        return (
            self.scale,
            self.age_bands,
            self.faces,
            self.item_keys,
            self.item_max,
            self.cutoff,
            self.reliable_change,
            self.norms,
        ) == (
            other.scale,
            other.age_bands,
            other.faces,
            other.item_keys,
            other.item_max,
            other.cutoff,
            other.reliable_change,
            other.norms,
        )


def load_instrument(path: str | Path) -> Instrument:
    """Read and strictly validate one JSON definition; any problem raises InstrumentError."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            raw = json.load(
                f, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant
            )
    except (OSError, ValueError) as exc:
        raise InstrumentError(f"{path}: cannot read JSON ({exc})") from exc
    try:
        return _instrument_from_json(raw)
    except ValueError as exc:
        raise InstrumentError(f"{path}: {exc}") from exc


def _reject_constant(name: str) -> Decimal:
    raise ValueError(f"{name} is not a valid number")


def _instrument_from_json(raw: object) -> Instrument:
    obj = _exact_keys(raw, "instrument", _REQUIRED_KEYS, _OPTIONAL_KEYS)
    item_max = obj.get("item_max", Decimal("10.0"))
    return Instrument(
        code=_text(obj, "code"),
        scale=_choice(Scale, obj["scale"], "scale"),
        title=_text(obj, "title"),
        instructions=_text(obj, "instructions"),
        language=_text(obj, "language"),
        age_bands=_age_bands(obj["age_bands"]),
        faces=_flag(obj, "faces"),
        items=_items(obj["items"]),
        cutoff=_number(obj["cutoff"], "cutoff"),
        reliable_change=(
            None
            if obj["reliable_change"] is None
            else _number(obj["reliable_change"], "reliable_change")
        ),
        norms=_norms(obj["norms"]),
        source=_text(obj, "source"),
        item_max=_number(item_max, "item_max"),
        translation_of=_text(obj, "translation_of") if "translation_of" in obj else None,
    )


def _exact_keys(
    raw: object, what: str, required: frozenset[str], optional: frozenset[str] = frozenset()
) -> Mapping[str, object]:
    # Unknown keys are rejected too: a misspelt "reliable_chnage" must not silently become null.
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be a JSON object")
    missing = sorted(required - raw.keys())
    if missing:
        raise ValueError(f"{what} is missing key(s) {missing}")
    unknown = sorted(raw.keys() - required - optional)
    if unknown:
        raise ValueError(f"{what} has unknown key(s) {unknown}")
    return raw


def _text(obj: Mapping[str, object], key: str, where: str = "") -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise ValueError(f"{where}{key} must be a string")
    return value


def _flag(obj: Mapping[str, object], key: str) -> bool:
    value = obj[key]
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _number(value: object, key: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise ValueError(f"{key} must be a number")
    return value


_E = TypeVar("_E", bound=StrEnum)


def _choice(enum: type[_E], value: object, key: str) -> _E:
    valid = [member.value for member in enum]
    if value not in valid:
        raise ValueError(f"{key} must be one of {valid}, not {value!r}")
    return enum(value)


def _age_bands(value: object) -> tuple[AgeBand, ...]:
    if not isinstance(value, list):
        raise ValueError("age_bands must be a list")
    return tuple(_choice(AgeBand, band, "age_bands") for band in value)


def _items(value: object) -> tuple[Item, ...]:
    if not isinstance(value, list):
        raise ValueError("items must be a list")
    items = []
    for position, raw in enumerate(value, start=1):
        obj = _exact_keys(raw, f"item {position}", _ITEM_KEYS)
        fields = {key: _text(obj, key, f"item {position}: ") for key in sorted(_ITEM_KEYS)}
        items.append(Item(**fields))
    return tuple(items)


def _norms(value: object) -> Norms | None:
    if value is None:
        return None
    obj = _exact_keys(value, "norms", _NORMS_KEYS)
    return Norms(**{key: float(_number(obj[key], f"norms.{key}")) for key in sorted(_NORMS_KEYS)})


class Catalogue:
    """The instruments in force, by code; a later definition of a code replaces the earlier one."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_code: dict[str, Instrument] = {}
        for instrument in instruments:
            self._by_code[instrument.code] = instrument
        self._check_translations()

    def _check_translations(self) -> None:
        # Checked once the overrides are in: a licensed original replaces ours, and our
        # translations of it must still measure like it.
        versions: set[tuple[str, str]] = set()
        for instrument in self._by_code.values():
            if instrument.translation_of is not None:
                original = self._by_code.get(instrument.translation_of)
                if original is None or original.translation_of is not None:
                    raise InstrumentError(
                        f"{instrument.code}: translation_of names {instrument.translation_of!r},"
                        " which is not an original instrument in the catalogue"
                    )
                if not instrument.measures_like(original):
                    raise InstrumentError(
                        f"{instrument.code}: a translation must keep the items, age bands, "
                        f"range and cut-offs of {original.code}"
                    )
            version = (instrument.family, instrument.language)
            if version in versions:
                raise InstrumentError(
                    f"{instrument.code}: a second {instrument.language!r} version of "
                    f"{instrument.family}"
                )
            versions.add(version)

    @classmethod
    def from_dirs(cls, *dirs: str | Path) -> Catalogue:
        """Load every *.json of each directory in turn, so later directories override earlier ones.

        This is how a licensed organisation swaps in the official wording without touching ours.
        """
        return cls(load_instrument(path) for directory in dirs for path in _json_files(directory))

    def get(self, code: str) -> Instrument:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown instrument {code!r}; known: {sorted(self._by_code)}") from None

    def for_client(
        self, scale: Scale, age_band: AgeBand, language: str = FALLBACK_LANGUAGE
    ) -> Instrument:
        """The one instrument of this scale worded for this age band in the client's language,
        else in FALLBACK_LANGUAGE.

        Two candidates would make the choice arbitrary, so that is an error rather than a guess.
        """
        for wanted in dict.fromkeys((language, FALLBACK_LANGUAGE)):
            matches = [
                instrument
                for instrument in self.all()
                if instrument.scale == scale
                and age_band in instrument.age_bands
                and instrument.language == wanted
            ]
            if len(matches) > 1:
                codes = [instrument.code for instrument in matches]
                raise LookupError(
                    f"several {scale} instruments for age band '{age_band}' in {wanted!r}: {codes}"
                )
            if matches:
                return matches[0]
        raise KeyError(f"no {scale} instrument for age band '{age_band}'")

    def translated(self, code: str, language: str) -> Instrument:
        """The version of `code`'s scale in `language`, else its original: how staff read the
        item labels of a rating the client gave in another language."""
        family = self.get(code).family
        for instrument in self._by_code.values():
            if instrument.family == family and instrument.language == language:
                return instrument
        return self.get(family)

    def all(self) -> tuple[Instrument, ...]:
        return tuple(self._by_code[code] for code in sorted(self._by_code))

    def __contains__(self, code: object) -> bool:
        return code in self._by_code


def _json_files(directory: str | Path) -> list[Path]:
    # A missing directory is a configuration mistake: fail loudly instead of loading nothing.
    directory = Path(directory)
    if not directory.is_dir():
        raise InstrumentError(f"{directory}: not a directory")
    return sorted(directory.glob("*.json"))


def default_catalogue(extra_dirs: Iterable[str | Path] = ()) -> Catalogue:
    """Our built-in instruments, overridden by any organisation directories given."""
    return Catalogue.from_dirs(BUILTIN_DIR, *extra_dirs)
