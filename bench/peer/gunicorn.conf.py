# gunicorn settings for the serving peer (bench/peer/app.py): the defaults a
# Python user starts from (sync workers, no preload), with the worker count
# and address from the environment:
#   PEER_WORKERS  worker processes (default 1)
#   PEER_BIND     host:port (default 127.0.0.1:8090)
#   PEER_WORKER_CLASS  sync (default; one request at a time per worker,
#                      connection closed after each) or gthread
import os

bind = os.environ.get("PEER_BIND", "127.0.0.1:8090")
workers = int(os.environ.get("PEER_WORKERS", "1"))
worker_class = os.environ.get("PEER_WORKER_CLASS", "sync")
threads = int(os.environ.get("PEER_GTHREADS", "1"))
backlog = 2048  # up to 64 waiting wrk connections
timeout = 120
graceful_timeout = 5
accesslog = None
loglevel = "warning"
