"""`celery -A xgenerator.tasks.entry worker ...`: the one module that builds a worker from the
environment at import time, for running Celery's own command line instead of
`xgenerator worker`."""

from xgenerator.settings import load_settings
from xgenerator.tasks.worker import Worker

app = Worker(load_settings()).app
