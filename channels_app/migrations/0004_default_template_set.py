from django.db import migrations


def create_default(apps, schema_editor):
    TemplateSet = apps.get_model("channels_app", "TemplateSet")
    if not TemplateSet.objects.filter(is_default=True).exists():
        TemplateSet.objects.create(
            name="Default",
            description="The platform's own messages for every notification method and bot. It cannot be deleted; "
            "edit a copy to change what your messages say.",
            is_default=True,
            bodies={},
        )


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0003_template_sets")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
