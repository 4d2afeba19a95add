"""``daily-sip doctor``: what a Daily account allows and how it answers, checked and recorded.

`checks` asks without dialling (key, domain, dial-out, SIP, webhook, receiver, rate limits);
`dial` places one real dial-out when asked and records what Daily sends back; `fingerprint` turns
that recording into a telephony profile the stand-in replays (``daily-sip emulator
--telephony-profile``). The command itself is ``daily_sip.cli``'s ``doctor``.
"""
