"""Factory reports over a period: reject history (more to come: hold, resource, jobs)."""
