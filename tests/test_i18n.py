"""User-facing text is marked for translation: makemessages finds it, the clinical core included."""

import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext is not installed")
def test_makemessages_extracts_the_strings_people_see(settings, tmp_path, monkeypatch):
    settings.LOCALE_PATHS = [tmp_path]
    monkeypatch.chdir(ROOT)
    call_command(
        "makemessages", locale=["xx"], verbosity=0, no_wrap=True, ignore_patterns=["tests/*"]
    )
    catalog = (tmp_path / "xx" / "LC_MESSAGES" / "django.po").read_text()
    for text in (
        "Log in to Alliance",  # a template
        "Please mark this line.",  # a service message
        "Only four-item scales can be stored.",
        "Adolescent (13–17)",  # a model choice
        # the clinical core marks its flag explanations without importing Django
        "Session rating %(total)s, below %(cutoff)s: ask what could be done differently.",
    ):
        assert f'msgid "{text}"' in catalog, text
    assert os.listdir(tmp_path) == ["xx"]
