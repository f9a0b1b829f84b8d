"""Compile the translation catalogues (.po) into the binary files (.mo) gettext reads.

Run by `make install` for each .po newer than its .mo, so a fresh clone, CI and `make run` have
them. polib does the compiling, so no machine needs GNU gettext's msgfmt just to run Alliance;
only `makemessages` (and the test that every string is translated) needs GNU gettext.

    python -m alliance_app.lib.translations [locale/xx/LC_MESSAGES/django.po ...]

With no arguments it compiles every catalogue under locale/.
"""

import sys
from collections.abc import Iterable
from pathlib import Path

import polib

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"


def catalogues(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/*.po"))


def compile_catalogues(paths: Iterable[Path]) -> list[Path]:
    """Write each catalogue's .mo beside it; fuzzy and untranslated entries are left out, as
    msgfmt does, so English shows until a translation is confirmed."""
    written = []
    for path in paths:
        mo = path.with_suffix(".mo")
        polib.pofile(str(path)).save_as_mofile(str(mo))
        written.append(mo)
    return written


def main(argv: list[str]) -> None:
    paths = [Path(arg) for arg in argv] or catalogues()
    for mo in compile_catalogues(paths):
        print(f"compiled {mo}")


if __name__ == "__main__":
    main(sys.argv[1:])
