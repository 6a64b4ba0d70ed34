"""Real-time graph signals computed off the decision path (docs/signals.md).

A consumer of the share-event stream (:mod:`.consumer`) feeds every share
and outcome to a pure-Python engine (:mod:`.engine`) of bounded, windowed
signals (one module each), which writes each suspicious entity's observed
value into its device's ``:sig`` hash; the decision script judges those
values as rules (``contract.RULES`` 11-15) against the policy's thresholds.
Evidence about other accounts (sinks among a share's recipients, fresh
bursts, fan-out waivers) goes on one board (:mod:`.board`) that every worker
copies into memory (:mod:`.board_cache`), judged with the stateless rules.
One consumer works at a time for the whole service (:mod:`.lease`,
:mod:`.runner`); gunicorn's master keeps one process running per server
(:mod:`.supervisor`), and each beats (:mod:`.heartbeat`) for ``/readyz`` and
``/metrics``.
"""
