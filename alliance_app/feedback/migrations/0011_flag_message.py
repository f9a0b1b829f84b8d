# Flags keep their explanation as the clinical core's message and values, translated when shown.
import re

from django.db import migrations, models

# The messages flags were explained with until now, as the clinical core wrote them in English
# (the only language then). Frozen here: a later change of wording must not change this step.
MESSAGES = [
    "Session rating %(total)s, below %(cutoff)s: ask what could be done differently.",
    "Session rating fell %(drop)s points since the previous session rating "
    "(%(previous)s to %(total)s): ask what changed.",
    "%(item)s rated %(score)s, below %(threshold)s: ask about this part of the work together.",
    "Outcome %(total)s is %(change)s points below intake (%(intake)s): "
    "a reliable worsening; review the plan together.",
    "No reliable improvement by session %(session)s (%(change)s since intake): "
    "review the plan with the client.",
    "Outcome %(total)s at session %(session)s; clients who started near %(intake)s are "
    "usually above %(boundary)s by now (half of them above %(median)s).",
    "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
    "the bond item fell most.",
    "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
    "the goals item fell most.",
    "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
    "the tasks item fell most.",
    "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
    "the rating of the session as a whole fell most.",
    "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
    "the %(dimensions)s items fell most, equally.",
    "The client felt tension with you in this session and says it was not sorted out.",
    "The client felt tension with you in this session and says it was sorted out a little.",
    "The client felt tension with you in this session and says it was partly sorted out.",
    "The client felt tension with you in this session and says it was mostly sorted out.",
    "The client felt tension with you in this session and says it was completely sorted out.",
]
BATCH = 2000


def _pattern(message: str) -> re.Pattern:
    parts = re.split(r"%\((\w+)\)s", message)
    # re.split alternates literal text and placeholder names.
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>.+?)"
        for index, part in enumerate(parts)
    )
    return re.compile(regex)


def fill(apps, schema_editor):
    """Read each stored explanation back into its message and values where one fits; a flag
    whose text fits none keeps its stored text, which is then what it shows."""
    flag_model = apps.get_model("feedback", "Flag")
    patterns = [(message, _pattern(message)) for message in MESSAGES]
    changed = []
    flags = flag_model.objects.filter(message="").select_related("rating").order_by("pk")
    for flag in flags.iterator(chunk_size=BATCH):
        for message, pattern in patterns:
            found = pattern.fullmatch(flag.explanation)
            if found:
                flag.message, flag.params = message, found.groupdict()
                if flag.item:
                    flag.params["instrument"] = flag.rating.instrument
                changed.append(flag)
                break
        if len(changed) >= BATCH:
            flag_model.objects.bulk_update(changed, ["message", "params"])
            changed = []
    flag_model.objects.bulk_update(changed, ["message", "params"])


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0010_expected_response_fits"),
    ]

    operations = [
        migrations.AddField(
            model_name="flag",
            name="message",
            field=models.TextField(blank=True, verbose_name="message"),
        ),
        migrations.AddField(
            model_name="flag",
            name="params",
            field=models.JSONField(blank=True, default=dict, verbose_name="message values"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
