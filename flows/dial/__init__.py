"""Dial out: one leg per attempt, from its start to its hang-up, with the DTMF script and redials."""
