"""`python -m verify burn-in`: minutes of full load on every GPU at once, judged as it runs.

Parts, so that each verdict is a test over recorded data: `series` (what one device's run
records), `verdicts` (pure judgements over a recorded run), `worker` (the load on one device, in
its own process), `sampling` (NVML health and new Xid lines, in a thread of the parent), `dcgm`
(DCGM's own diagnostic when dcgmi is installed), `run` (orchestration, signals, partial results),
`report` (the JSON document), `plots` (inline-SVG HTML) and `cli`.
"""
