"""Controller side of a fleet run: merge per-host reports into one view, compare, diff runs.

python -m verify.fleet merge RUN_DIR      # fleet.json, fleet.junit.xml, fleet.html; exit 1
                                          # when any host failed or could not be verified
python -m verify.fleet report [--run ID]  # re-render a run (default: reports/latest)
python -m verify.fleet diff RUN_A RUN_B   # checks that changed state between two runs
"""
