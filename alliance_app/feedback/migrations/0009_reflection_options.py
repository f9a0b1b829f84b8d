from django.db import migrations


def fill(apps, schema_editor):
    """Give the organisations already there the built-in reflection options, as new ones get."""
    from alliance_app.feedback.reflections import options_ensure

    option = apps.get_model("feedback", "ReflectionOption")
    for pk in apps.get_model("accounts", "Organization").objects.values_list("pk", flat=True):
        options_ensure(pk, model=option)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_rupture_settings"),
        ("feedback", "0008_ruptures_tension_reflections"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
