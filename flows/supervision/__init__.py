"""Supervision: what tells a running campaign to stop (cancel, a dead worker) and what its process shares."""
