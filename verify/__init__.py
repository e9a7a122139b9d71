"""labrig verify: prove that a provisioned workstation does deep learning on its GPUs.

Data flows one way: gather a snapshot (I/O) -> pure checks over it -> workload checks
(run a framework) -> one report (terminal table, JSON, JUnit).
"""

__version__ = "0.1.0"
