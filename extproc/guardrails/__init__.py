"""Guardrails: checks on what a client sends a model and on what comes back, as pure code.

Nothing here knows about gRPC or Envoy: `GuardrailSet` (checks.py) takes a client's request body (or a whole
answer) in its client API's shape and returns a `Decision` (block, or events to count, with the body masked in
place); `StreamGuard` (stream.py) does the same for a streamed answer's text, delta by delta, and `streams`
applies it to each client API's SSE events, bytes in and bytes out. `replies` makes a block the client's 400. The
ext_proc wires them to traffic. Other modules: `slots` (every text the model reads, per API), `pii`, `secrets`,
`patterns` (a team's regexes and terms), `tokens` (the input-size estimate), `masking` (typed placeholders),
`plugins` (entry points), `rules` (a configured check made runnable).

Why the personal-data patterns are hand-written. Measured on this machine (2 shared cores, under load) on the
labelled sample in `tests/support/pii_sample.py` (32 texts, 22 spans to find, 13 near-misses), each detector in a
fresh process (`tests/support/pii_library_comparison.py`):

| detector | kinds | found | missed | false alarms | start | per text | installs |
|---|---|---|---|---|---|---|---|
| these patterns, Luhn, mod-97, ipaddress | 5 | 22 | 0 | 0 | 0.3 s | 0.03 ms | nothing new |
| Presidio's pattern recognizers (no NLP) | 5 | 22 | 0 | 0 | 1.2 s | 2.2 ms | 51 packages, 368 MB (spaCy...) |
| Presidio's AnalyzerEngine | - | - | - | - | fails | - | fetches a spaCy model at start |
| scrubadub 2.0 (email, phone, card) | 3 | 12 | 3 | 1 | 2.8 s | 1.6 ms | 24 packages, 365 MB (sklearn...) |
| phonenumbers' matcher, region US | 1 | 6 | 1 | 0 | 0.03 s | 1.0 ms | 1 package, 47 MB |

The sample was written alongside these patterns, so their perfect score flatters them; Presidio's recognizers
matched it untuned, and are the better-kept option for more kinds or locales. But they bring spaCy whether or
not its model is used, start four times slower, and cost about 70 times more per text, on every request of a
guarded route; the kinds asked for here are defined by checksums and formats that a page of patterns states
exactly. Phone numbers are the weak kind of hand-written patterns (national formats vary): the patterns take
international numbers and 10-11 digit national ones in separated groups; `phonenumbers` would be the library to
add if a locale needs more. Team patterns run under `regex`, which can time out; the built-in patterns have no
nested unbounded repetition, so their time is linear in the text (0.3 s for 400 KB of spaced digits, the worst
input found).
"""

from extproc.guardrails.checks import Block, Decision, GuardrailSet, RuleEvent
from extproc.guardrails.masking import Masker
from extproc.guardrails.stream import StreamGuard, StreamStep

__all__ = ["Block", "Decision", "GuardrailSet", "Masker", "RuleEvent", "StreamGuard", "StreamStep"]
