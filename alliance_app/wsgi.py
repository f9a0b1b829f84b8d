"""The WSGI application, as gunicorn loads it in each worker.

Once the app and every view it routes to are imported, their objects (some 200,000, with pandas,
numpy and the app's modules) are moved out of the garbage collector's reach (`gc.freeze`): they
live as long as the process, and a full collection, which Python runs every so many requests,
would otherwise walk them all each time, for tens of milliseconds in the middle of a request.
"""

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alliance_app.settings")

application = get_wsgi_application()
# The URLconf imports every view module now rather than at the first request.
import_module(settings.ROOT_URLCONF)
gc.collect()
gc.freeze()
