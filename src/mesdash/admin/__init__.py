"""Health, metrics and admin: auth, worker restart policy, audit log, watchdog."""
