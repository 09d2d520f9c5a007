"""Monitoring: the profile's ``monitoring:`` section, flow-run metrics pushed to a Pushgateway,
and JSON-lines log files. Prometheus itself is started by the command line (``cli/monitoring``).
"""
