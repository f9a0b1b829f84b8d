"""Run makemessages over the project into a folder of the test's own; read the shipped catalogues.

makemessages writes a file's strings into the locale folder nearest to it, and the project's own
locale/ is nearest to every file: run from the repository, it would rewrite the shipped
catalogues. So it runs from a folder of links to the project's files instead, with no locale/
of its own, and writes where the test says. The folders left out are those the translators'
command ignores (tests, bench, the virtualenv).
"""

from pathlib import Path

import polib
from django.core.management import call_command
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = {"locale", "tests", "bench", ".venv", ".git", "staticfiles", "results", "build"}


def extract(tmp_path: Path, languages: list[str], monkeypatch) -> dict[str, polib.POFile]:
    source, out = tmp_path / "source", tmp_path / "locale"
    source.mkdir()
    out.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in LEFT_OUT and not entry.name.startswith("."):
            (source / entry.name).symlink_to(entry)
    monkeypatch.chdir(source)
    with override_settings(LOCALE_PATHS=[out]):
        call_command("makemessages", locale=languages, verbosity=0, no_wrap=True, symlinks=True)
    return {
        language: polib.pofile(str(out / language / "LC_MESSAGES" / "django.po"))
        for language in languages
    }


def shipped_translation(language: str, msgid: str) -> str:
    """The shipped catalogue's translation, read from its .po: what a page in `language` shows."""
    if language == "en":
        return msgid
    po = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
    entry = polib.pofile(str(po)).find(msgid)
    assert entry is not None and entry.msgstr, f"{msgid!r} is not translated into {language}"
    return entry.msgstr
