"""What an operator sees of a running server: Prometheus metrics (metrics.py, scrape.py),
the access log and the log formats (access_log.py, logs.py), and readiness (readiness.py).
Observers of the dispatcher (dispatch.Observer); imports dispatch and the layers below it,
never the transports.
"""
