"""The job domain: statuses and transitions, submission, claiming, running, cancelling."""
