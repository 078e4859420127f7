"""The Message aggregate: queue (a row, then wake a dispatcher), send (claim → begin → build →
provider.send → record), transitions (every status change and its event, the one "sendable"
rule), throttle (shared rates) and sweep (what is due or stuck)."""
