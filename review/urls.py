from django.urls import path

from review import dashboards, playground, versions, views

app_name = "review"

urlpatterns = [
    path("review/", views.console, name="console"),
    path("review/queue", views.queue_list, name="queue"),
    path("review/<int:pk>/", views.item, name="item"),
    path("review/<int:pk>/act", views.act, name="act"),
    path("dashboards/", dashboards.dashboards, name="dashboards"),
    path(
        "dashboards/series/<slug:name>.<str:format>",
        dashboards.series,
        name="series",
    ),
    path("models/", versions.versions, name="versions"),
    path("models/train", versions.train, name="train"),
    path("models/<int:pk>/progress", versions.progress, name="progress"),
    path("models/<int:pk>/promote", versions.promote, name="promote"),
    path("models/<int:pk>/rollback", versions.rollback, name="rollback"),
    path("models/<int:pk>/export", versions.export_version, name="export_version"),
    path("models/import", versions.import_version, name="import_version"),
    path("playground/", playground.playground, name="playground"),
]
