"""Schedule the training lifecycle's tick: reap dead runs, then queue due trainings."""

from django.db import migrations

LIFECYCLE_SCHEDULE = "training lifecycle"


def schedule_the_lifecycle(apps, schema_editor):
    """Every minute on the django-q2 cluster (edit it in the admin); replaces the post_save
    trigger that ran on the request path."""
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name=LIFECYCLE_SCHEDULE,
        defaults={
            "func": "training.tasks.reap_and_queue_trainings",
            "schedule_type": "I",  # Schedule.MINUTES
            "minutes": 1,
            "repeats": -1,
        },
    )


def unschedule_the_lifecycle(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=LIFECYCLE_SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0002_liveaudit"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedule_the_lifecycle, unschedule_the_lifecycle)]
