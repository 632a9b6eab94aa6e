from django.apps import AppConfig


class BoundaryConfig(AppConfig):
    name = "boundary"
    verbose_name = "Boundary calls and models"
