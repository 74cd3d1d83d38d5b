"""gunicorn's settings, from the same environment as Django's, so the web processes and the database
pool agree on the number of threads: `gunicorn -c python:reseller.gunicorn reseller.wsgi`.

Each of WEB_CONCURRENCY processes runs GUNICORN_THREADS threads and holds at most that many database
connections; docs/operations.md adds them up against PostgreSQL's max_connections.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Behind a load balancer that keeps connections open; shorter than its idle timeout.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
accesslog = "-"
