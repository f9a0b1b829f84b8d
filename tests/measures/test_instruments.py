import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from alliance_app.measures import (
    BUILTIN_DIR,
    AgeBand,
    Catalogue,
    InstrumentError,
    Scale,
    Thresholds,
    cutoff_c,
    default_catalogue,
    load_instrument,
    reliable_change_threshold,
)

CATALOGUE = default_catalogue()

# Phrases of the licensed ORS/SRS/CORS/CSRS forms, kept only as SHA-256 digests of their plain
# words (lower case, punctuation dropped) so that not even this test holds the licensed text.
# Each entry is (number of words, digest); every run of that many words in our texts is checked.
LICENSED_PHRASE_DIGESTS = [
    (1, "a20c45948482314083f0602e46f22da3062e6cd2e9846c97c99553c7d1d7a353"),
    (1, "dd3cc31b36bdc56e7367a5fad24660d0da99988e21b9e634b51c34f6ede9bff7"),
    (1, "fdd830a755c35984f996704453e2e2a27f5ad19249e778a05b57a70c3bf5e99b"),
    (3, "6bc223b613e80762ebb8f65e221cd13e89776cfb3320bff6666cc53c83d446bb"),
    (3, "94d9307ab16d11bb127f4f01f4e44cc6e68d7ac3713c97622397b56c3d4bba35"),
    (3, "a41bfc2859be3c23c0af9073d283a29a798068891715d287d89261c28c3dcc86"),
    (5, "9cd0fc79cb5bb0216ea2dce282cd9a42f33be3d36af56da9833d0cd6642affa0"),
    (5, "2eaf0c0f642dc17c7343945d5bdcfa0881cc3fe4c575d8b5ff07445b441e1678"),
    (3, "40d8618475b667505b6448b5e2ad68aebb993df787750f22026ef87823df39de"),
    (3, "ad0e7cb2e5c19999d2676df6eed1a4989d7fb986a256ff2208ab9ce6a7442615"),
    (9, "dd038b5968556087b60233490349ff559489f855329d8779ce1d4ca2366d2151"),
    (8, "ce6fa3a67fe26b59e1b6ee8bf906f3a3242b2f774d7a7e0758abacad578b822b"),
    (7, "eca9ce033f85d3f7852f6fb52571373d4fb24edeef90b0bfaabcef35a43217bc"),
    (10, "7cfaa5824321831cdcbca47f32c433e01633800966659b63a03184e2a2abd72e"),
]


def _plain_words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _shipped_json(code: str) -> dict:
    return json.loads((BUILTIN_DIR / f"{code}.json").read_text(encoding="utf-8"))


def _write(directory: Path, data: dict, name: str | None = None) -> Path:
    path = directory / f"{name or data['code']}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("code", "clinical", "not_clinical"),
    [
        ("outcome-adult", "25.0", "25.1"),
        ("outcome-adolescent", "28.0", "28.1"),
        ("outcome-child", "32.0", "32.1"),
    ],
)
def test_it_puts_an_outcome_total_at_the_cutoff_in_the_clinical_range(code, clinical, not_clinical):
    instrument = CATALOGUE.get(code)
    assert Thresholds.of(instrument).is_clinical(Decimal(clinical))
    assert not Thresholds.of(instrument).is_clinical(Decimal(not_clinical))


def test_it_judges_the_same_outcome_total_by_the_age_bands_cutoff():
    total = Decimal("30.0")
    assert not Thresholds.of(CATALOGUE.get("outcome-adult")).is_clinical(total)
    assert not Thresholds.of(CATALOGUE.get("outcome-adolescent")).is_clinical(total)
    assert Thresholds.of(CATALOGUE.get("outcome-child")).is_clinical(total)


@pytest.mark.parametrize("code", ["session-adult", "session-child"])
def test_it_treats_only_a_session_total_below_36_as_an_alliance_concern(code):
    instrument = CATALOGUE.get(code)
    assert Thresholds.of(instrument).is_clinical(Decimal("35.9"))
    assert not Thresholds.of(instrument).is_clinical(Decimal("36.0"))


def test_it_knows_the_range_and_item_order():
    instrument = CATALOGUE.get("outcome-child")
    assert instrument.max_total == Decimal("40.0")
    assert instrument.item_keys == ("me", "family", "school", "everything")


def test_it_parses_cutoffs_as_exact_decimals():
    instrument = load_instrument(BUILTIN_DIR / "outcome-adult.json")
    assert instrument.cutoff == Decimal("25.0")
    assert isinstance(instrument.cutoff, Decimal)
    assert instrument.reliable_change == Decimal("5.0")
    assert isinstance(instrument.reliable_change, Decimal)
    assert CATALOGUE.get("session-adult").reliable_change is None


ORIGINALS = [instrument for instrument in CATALOGUE.all() if instrument.translation_of is None]
LANGUAGES = ("en", "es", "nb")


def test_it_ships_the_five_instruments_with_the_agreed_keys():
    assert [(i.code, i.scale, i.age_bands, i.item_keys) for i in ORIGINALS] == [
        (
            "outcome-adolescent",
            Scale.OUTCOME,
            (AgeBand.ADOLESCENT,),
            ("personal", "relationships", "social", "overall"),
        ),
        (
            "outcome-adult",
            Scale.OUTCOME,
            (AgeBand.ADULT,),
            ("personal", "relationships", "social", "overall"),
        ),
        (
            "outcome-child",
            Scale.OUTCOME,
            (AgeBand.CHILD,),
            ("me", "family", "school", "everything"),
        ),
        (
            "session-adult",
            Scale.SESSION,
            (AgeBand.ADULT, AgeBand.ADOLESCENT),
            ("relationship", "goals", "approach", "overall"),
        ),
        (
            "session-child",
            Scale.SESSION,
            (AgeBand.CHILD,),
            ("relationship", "goals", "approach", "overall"),
        ),
    ]


@pytest.mark.parametrize("code", ["outcome-adult", "outcome-adolescent", "outcome-child"])
def test_it_ships_outcome_scales_with_a_reliable_change_of_five(code):
    assert CATALOGUE.get(code).reliable_change == Decimal("5.0")


def test_it_ships_each_instrument_in_english_spanish_and_norwegian():
    versions = {(i.family, i.language): i.code for i in CATALOGUE.all()}
    assert len(CATALOGUE.all()) == 15
    for original in ORIGINALS:
        assert original.language == "en"
        for language in LANGUAGES[1:]:
            translation = CATALOGUE.get(versions[original.code, language])
            assert translation.code == f"{original.code}-{language}"
            assert translation.translation_of == original.code
            assert translation.measures_like(original)
            # Translated, not copied: every label and anchor reads differently.
            for ours, theirs in zip(original.items, translation.items, strict=True):
                assert theirs.label != ours.label, (translation.code, ours.key)
                assert theirs.low_anchor != ours.low_anchor, (translation.code, ours.key)
                assert theirs.high_anchor != ours.high_anchor, (translation.code, ours.key)


def test_it_ships_four_fully_worded_items_per_instrument():
    for instrument in CATALOGUE.all():
        assert len(instrument.items) == 4, instrument.code
        assert instrument.language in LANGUAGES
        assert instrument.title.strip()
        assert instrument.instructions.strip()
        for item in instrument.items:
            assert item.label.strip(), (instrument.code, item.key)
            assert item.low_anchor.strip(), (instrument.code, item.key)
            assert item.high_anchor.strip(), (instrument.code, item.key)
            assert item.low_anchor != item.high_anchor


def test_it_draws_faces_only_on_the_child_scales():
    faces = {instrument.code: instrument.faces for instrument in ORIGINALS}
    assert faces == {
        "outcome-adolescent": False,
        "outcome-adult": False,
        "outcome-child": True,
        "session-adult": False,
        "session-child": True,
    }


def test_it_says_every_shipped_instrument_is_our_own_wording():
    for instrument in CATALOGUE.all():
        assert "not the licensed ORS/SRS text" in instrument.source


def _licensed_runs(text: str) -> list[str]:
    words = _plain_words(text).split()
    found = []
    for count, digest in LICENSED_PHRASE_DIGESTS:
        for start in range(len(words) - count + 1):
            run = " ".join(words[start : start + count])
            if hashlib.sha256(run.encode()).hexdigest() == digest:
                found.append(run)
    return found


def test_the_licensed_phrase_check_finds_a_listed_phrase():
    # The mechanism, shown on a phrase of our own (the real list holds digests only).
    phrase_digest = hashlib.sha256(b"our own test phrase").hexdigest()
    LICENSED_PHRASE_DIGESTS.append((4, phrase_digest))
    try:
        assert _licensed_runs("This is Our own, test phrase!") == ["our own test phrase"]
    finally:
        LICENSED_PHRASE_DIGESTS.pop()


def test_it_never_ships_licensed_wording():
    files = sorted(BUILTIN_DIR.glob("*"))
    assert len(files) == 15
    for path in files:
        assert _licensed_runs(path.read_text(encoding="utf-8")) == [], path.name


def test_it_ships_illustrative_adult_norms_consistent_with_the_cutoff_and_reliable_change():
    instrument = CATALOGUE.get("outcome-adult")
    norms = instrument.norms
    assert norms is not None
    assert "illustrative" in instrument.source
    assert "not published norms" in instrument.source
    c = cutoff_c(norms.clinical_mean, norms.clinical_sd, norms.functional_mean, norms.functional_sd)
    assert abs(c - float(instrument.cutoff)) < 0.5
    threshold = reliable_change_threshold(norms.clinical_sd, norms.reliability)
    assert abs(threshold - float(instrument.reliable_change)) < 0.5


@pytest.mark.parametrize(
    ("scale", "band", "code"),
    [
        (Scale.OUTCOME, AgeBand.ADULT, "outcome-adult"),
        (Scale.OUTCOME, AgeBand.ADOLESCENT, "outcome-adolescent"),
        (Scale.OUTCOME, AgeBand.CHILD, "outcome-child"),
        (Scale.SESSION, AgeBand.ADULT, "session-adult"),
        (Scale.SESSION, AgeBand.ADOLESCENT, "session-adult"),
        (Scale.SESSION, AgeBand.CHILD, "session-child"),
    ],
)
def test_it_picks_the_instrument_for_a_clients_age_band(scale, band, code):
    assert CATALOGUE.for_client(scale, band).code == code


def test_it_refuses_to_pick_when_no_instrument_fits():
    catalogue = Catalogue([CATALOGUE.get("outcome-adult")])
    with pytest.raises(KeyError, match="no session instrument for age band 'child'"):
        catalogue.for_client(Scale.SESSION, AgeBand.CHILD)


@pytest.mark.parametrize(
    ("band", "language", "code"),
    [
        (AgeBand.ADULT, "es", "outcome-adult-es"),
        (AgeBand.ADULT, "nb", "outcome-adult-nb"),
        (AgeBand.ADOLESCENT, "nb", "outcome-adolescent-nb"),
        (AgeBand.CHILD, "es", "outcome-child-es"),
        (AgeBand.ADULT, "en", "outcome-adult"),
        # No Danish version: the English one, not an error.
        (AgeBand.CHILD, "da", "outcome-child"),
    ],
)
def test_it_picks_the_instrument_in_the_clients_language(band, language, code):
    assert CATALOGUE.for_client(Scale.OUTCOME, band, language).code == code


def test_it_picks_a_session_scale_shared_by_two_bands_in_the_clients_language():
    assert CATALOGUE.for_client(Scale.SESSION, AgeBand.ADOLESCENT, "es").code == "session-adult-es"


def test_a_second_language_instrument_does_not_disturb_the_english_look_up(tmp_path):
    data = _shipped_json("outcome-adult")
    data["code"] = "outcome-adult-de"
    data["language"] = "de"
    _write(tmp_path, data)
    catalogue = default_catalogue([tmp_path])
    assert catalogue.for_client(Scale.OUTCOME, AgeBand.ADULT).code == "outcome-adult"
    assert catalogue.for_client(Scale.OUTCOME, AgeBand.ADULT, "de").code == "outcome-adult-de"


def test_it_refuses_to_guess_between_two_instruments_for_one_band_and_language(tmp_path):
    data = _shipped_json("outcome-adult")
    data["code"] = "outcome-adult-too"
    _write(tmp_path, data)
    catalogue = default_catalogue([tmp_path])
    with pytest.raises(LookupError, match="outcome-adult-too"):
        catalogue.for_client(Scale.OUTCOME, AgeBand.ADULT)


def test_it_shows_a_rating_in_another_language_with_the_readers_labels():
    assert CATALOGUE.translated("outcome-adult-es", "nb").code == "outcome-adult-nb"
    assert CATALOGUE.translated("outcome-adult-nb", "en").code == "outcome-adult"
    assert CATALOGUE.translated("session-child-es", "da").code == "session-child"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: data.update(cutoff=30.0), "must keep the items, age bands"),
        (lambda data: data.update(age_bands=["adolescent"]), "must keep the items, age bands"),
        (lambda data: data["items"][0].update(key="mood"), "must keep the items, age bands"),
        (lambda data: data.update(translation_of="outcome-elder"), "not an original instrument"),
        (lambda data: data.update(translation_of="outcome-adult-es"), "not an original"),
        (lambda data: data.update(code="outcome-adult-nb2"), "a second 'nb' version"),
    ],
)
def test_it_refuses_a_translation_that_measures_differently(tmp_path, change, message):
    data = _shipped_json("outcome-adult-nb")
    change(data)
    _write(tmp_path, data, name="zz-translation")
    with pytest.raises(InstrumentError, match=message):
        default_catalogue([tmp_path])


def test_it_names_the_unknown_code():
    with pytest.raises(KeyError, match="unknown instrument 'outcome-elder'"):
        CATALOGUE.get("outcome-elder")


def test_it_answers_membership_by_code():
    assert "session-child" in CATALOGUE
    assert "session-elder" not in CATALOGUE


def test_it_lets_a_later_directory_replace_an_instrument_by_code(tmp_path):
    licensed = _shipped_json("outcome-adult")
    licensed["title"] = "Licensed outcome scale"
    licensed["source"] = "Loaded by the organisation under its own licence"
    _write(tmp_path, licensed, name="licensed-outcome")

    for catalogue in (Catalogue.from_dirs(BUILTIN_DIR, tmp_path), default_catalogue([tmp_path])):
        assert catalogue.get("outcome-adult").title == "Licensed outcome scale"
        assert catalogue.get("outcome-child") == CATALOGUE.get("outcome-child")
        assert len(catalogue.all()) == 15
        # Our translations now translate the licensed original, with its cut-offs.
        assert catalogue.get("outcome-adult-nb").family == "outcome-adult"


def test_it_keeps_the_builtin_instrument_when_the_order_is_reversed(tmp_path):
    licensed = _shipped_json("outcome-adult")
    licensed["title"] = "Licensed outcome scale"
    _write(tmp_path, licensed)
    catalogue = Catalogue.from_dirs(tmp_path, BUILTIN_DIR)
    assert catalogue.get("outcome-adult").title == CATALOGUE.get("outcome-adult").title


def test_it_fails_loudly_on_a_missing_directory(tmp_path):
    with pytest.raises(InstrumentError, match="not a directory"):
        Catalogue.from_dirs(tmp_path / "nowhere")


def _drop_cutoff(data):
    del data["cutoff"]


def _duplicate_item_key(data):
    data["items"][1]["key"] = data["items"][0]["key"]


def _bad_scale(data):
    data["scale"] = "mood"


def _bad_age_band(data):
    data["age_bands"] = ["adult", "elder"]


def _no_items(data):
    data["items"] = []


def _empty_anchor(data):
    data["items"][2]["low_anchor"] = "  "


def _item_without_label(data):
    del data["items"][0]["label"]


def _cutoff_above_max(data):
    data["cutoff"] = 40.1


def _negative_cutoff(data):
    data["cutoff"] = -1


def _cutoff_as_text(data):
    data["cutoff"] = "25.0"


def _zero_reliable_change(data):
    data["reliable_change"] = 0


def _negative_reliable_change(data):
    data["reliable_change"] = -5.0


def _unknown_key(data):
    data["reliable_chnage"] = 5.0


def _faces_as_text(data):
    data["faces"] = "yes"


def _no_age_bands(data):
    data["age_bands"] = []


def _bad_reliability(data):
    data["norms"]["reliability"] = 1.0


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_drop_cutoff, "missing key(s) ['cutoff']"),
        (_duplicate_item_key, "duplicate item keys"),
        (_bad_scale, "scale must be one of ['outcome', 'session'], not 'mood'"),
        (_bad_age_band, "age_bands must be one of"),
        (_no_items, "at least one item"),
        (_empty_anchor, "item 'social': low_anchor is empty"),
        (_item_without_label, "item 1 is missing key(s) ['label']"),
        (_cutoff_above_max, "cutoff 40.1 is outside 0..40.0"),
        (_negative_cutoff, "cutoff -1 is outside"),
        (_cutoff_as_text, "cutoff must be a number"),
        (_zero_reliable_change, "reliable_change must be positive or null"),
        (_negative_reliable_change, "reliable_change must be positive or null"),
        (_unknown_key, "unknown key(s) ['reliable_chnage']"),
        (_faces_as_text, "faces must be true or false"),
        (_no_age_bands, "age_bands must be non-empty"),
        (_bad_reliability, "reliability must be in [0, 1)"),
    ],
)
def test_it_rejects_a_broken_definition_naming_the_file_and_problem(tmp_path, mutate, problem):
    data = _shipped_json("outcome-adult")
    mutate(data)
    path = _write(tmp_path, data, name="broken")
    with pytest.raises(InstrumentError) as excinfo:
        load_instrument(path)
    assert str(path) in str(excinfo.value)
    assert problem in str(excinfo.value)


def test_it_rejects_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InstrumentError, match="cannot read JSON"):
        load_instrument(path)


def test_it_rejects_nan_in_a_definition(tmp_path):
    path = tmp_path / "broken.json"
    text = (BUILTIN_DIR / "outcome-child.json").read_text(encoding="utf-8")
    path.write_text(text.replace('"cutoff": 32.0', '"cutoff": NaN'), encoding="utf-8")
    with pytest.raises(InstrumentError, match="NaN is not a valid number"):
        load_instrument(path)


def test_it_stops_a_catalogue_load_at_the_first_broken_file(tmp_path):
    data = _shipped_json("session-child")
    data["scale"] = "alliance"
    _write(tmp_path, data)
    with pytest.raises(InstrumentError, match=r"session-child\.json"):
        default_catalogue([tmp_path])
