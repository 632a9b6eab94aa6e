import os

from django.core.wsgi import get_wsgi_application

from valence_site import prefer_sleeping_openmp_threads

prefer_sleeping_openmp_threads()  # before anything loads torch
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valence_site.settings")
application = get_wsgi_application()
