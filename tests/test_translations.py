"""The shipped languages are complete: every string people see is translated, and compiled.

The strings are extracted afresh from the code (as the translators' makemessages does), so a
new page whose text nobody translated fails here, not in front of a Norwegian clinic.
"""

import re

import polib
import pytest
from django.conf import settings
from django.utils import translation

from alliance_app.lib.translations import LOCALE_DIR, compile_catalogues
from tests.extraction import extract

SHIPPED = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
# %(name)s, %s, %d, %.1f: what Python's % operator fills in; %% is a literal percent sign.
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([sdifr%])")
SHOWN = 20


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return extract(tmp_path_factory.mktemp("extracted"), SHIPPED, monkeypatch)


def shipped(language: str) -> polib.POFile:
    return polib.pofile(str(LOCALE_DIR / language / "LC_MESSAGES" / "django.po"))


def placeholders(text: str) -> list[str]:
    return sorted(name or kind for name, kind in PLACEHOLDER.findall(text) if kind != "%")


def _listed(problems: list[str]) -> str:
    return f"{len(problems)} strings:\n" + "\n".join(problems[:SHOWN])


def test_the_shipped_languages_are_spanish_and_norwegian():
    assert SHIPPED == ["es", "nb"]


@pytest.mark.parametrize("language", SHIPPED)
def test_every_string_people_see_is_translated(extracted, language):
    catalogue = shipped(language)
    problems = []
    for wanted in extracted[language]:
        entry = catalogue.find(wanted.msgid, msgctxt=wanted.msgctxt)
        if entry is None or entry.obsolete:
            problems.append(f"missing: {wanted.msgid!r}")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {wanted.msgid!r}")
        elif wanted.msgid_plural and (
            len(entry.msgstr_plural) < 2 or not all(entry.msgstr_plural.values())
        ):
            problems.append(f"plural forms missing: {wanted.msgid!r}")
        elif not wanted.msgid_plural and not entry.msgstr:
            problems.append(f"untranslated: {wanted.msgid!r}")
    assert not problems, _listed(problems)


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_the_placeholders(language):
    problems = []
    for entry in shipped(language).translated_entries():
        if entry.msgid_plural:
            # A singular form may say "one" instead of showing the number.
            allowed = set(placeholders(entry.msgid) + placeholders(entry.msgid_plural))
            for form in entry.msgstr_plural.values():
                if not set(placeholders(form)) <= allowed:
                    problems.append(f"{entry.msgid!r}: {form!r}")
        elif "python-format" in entry.flags and placeholders(entry.msgstr) != placeholders(
            entry.msgid
        ):
            problems.append(f"{entry.msgid!r}: {entry.msgstr!r}")
    assert not problems, _listed(problems)


@pytest.mark.parametrize("language", SHIPPED)
def test_the_plural_rule_is_the_languages(language):
    # Spanish and Norwegian both have one form for 1 and another for the rest.
    assert shipped(language).metadata["Plural-Forms"].replace(" ", "") == (
        "nplurals=2;plural=(n!=1);"
    )


@pytest.mark.parametrize(("language", "log_out"), [("es", "Cerrar sesión"), ("nb", "Logg ut")])
def test_the_compiled_catalogues_load(language, log_out):
    # `make install` compiles them, again when a .po changes; without, pages read English.
    po = LOCALE_DIR / language / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    assert mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime, "run make install"
    with translation.override(language):
        assert translation.gettext("Log out") == log_out
        assert translation.gettext("Log out") != "Log out"


def test_a_catalogue_compiles_without_gnu_gettext(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Log out"\nmsgstr "Logg ut"\n\n'
        '#, fuzzy\nmsgid "Save"\nmsgstr "Lagre kanskje"\n',
        encoding="utf-8",
    )
    (mo,) = compile_catalogues([po])
    compiled = polib.mofile(str(mo))
    # A fuzzy translation is left out, as msgfmt leaves it out: English shows instead.
    assert {entry.msgid: entry.msgstr for entry in compiled} == {"Log out": "Logg ut"}
