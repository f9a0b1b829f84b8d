"""User-facing text is marked for translation: makemessages finds it, the clinical core included."""

from tests.extraction import extract


def test_makemessages_extracts_the_strings_people_see(tmp_path, monkeypatch):
    catalog = extract(tmp_path, ["xx"], monkeypatch)["xx"]
    msgids = {entry.msgid for entry in catalog}
    for text in (
        "Log in to Alliance",  # a template
        "Please mark this line.",  # a service message
        "Only four-item scales can be stored.",
        "Adolescent (13–17)",  # a model choice
        # the clinical core marks its flag explanations without importing Django
        "Session rating %(total)s, below %(cutoff)s: ask what could be done differently.",
    ):
        assert text in msgids, text
    assert sorted(path.name for path in (tmp_path / "locale").iterdir()) == ["xx"]
