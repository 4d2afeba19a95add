"""Collect results: Daily's signed webhooks, as Prefect events, verified and routed to their leg."""
