import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reseller.settings")
django.setup(set_prefix=False)

from reseller.handlers import PathDispatcher  # noqa: E402  (needs the settings above)

# The API and the probes skip the pages' middleware (reseller/handlers.py).
application = PathDispatcher()
