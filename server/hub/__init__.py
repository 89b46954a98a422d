"""The cluster-wide session hub over Redis: atomic fenced appends, leases, routed fan-out."""
