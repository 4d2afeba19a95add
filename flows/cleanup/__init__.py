"""Clean up: the ledger of what a run turned on, heartbeats, and turning it all off on every exit path."""
