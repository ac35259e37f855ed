"""triage: a batch job that turns a window of Kubernetes error logs into a short digest."""

__version__ = "0.1.0"
