from django.db import migrations, models


def rebuild_trailing_figures(apps, schema_editor):
    """Trailing figures built before this change may hold a second row for an account (late writers
    added one rather than wait), which the new constraint forbids, and none has today's hours folded in.
    They are dropped and marked unbuilt: the next hourly rollup builds them again, and until then the
    overview reads its ranges from the hours, with the same figures."""
    apps.get_model("accounts", "TrailingUsage").objects.all().delete()
    apps.get_model("accounts", "UsageRollup").objects.filter(trailing_built=True).update(trailing_built=False)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_usage_rollup_and_covering_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagerollup",
            name="hours_folded_until",
            field=models.DateTimeField(
                blank=True,
                help_text="On the trailing mark: today's hours before this instant are added to TrailingUsage.",
                null=True,
            ),
        ),
        migrations.RunPython(rebuild_trailing_figures, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="trailingusage",
            constraint=models.UniqueConstraint(
                condition=models.Q(("account__isnull", False)),
                fields=("account", "billed_to", "days", "through"),
                name="trailing_usage_one_row_per_account",
            ),
        ),
    ]
