"""The seed's two-layer MLP trained on the device, judged the same way for every framework."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from verify.result import CheckResult, failed, passed
from verify.workloads import spec

if TYPE_CHECKING:
    import numpy as np

    from verify.frameworks import Device, FrameworkAdapter
    from verify.workloads import WorkloadRun

CHECK_ID = "workload.mlp"


@dataclass(frozen=True)
class MlpOutcome:
    accuracy: float
    initial_loss: float
    final_loss: float
    train_time_s: float
    # Class probabilities of every training point, then of the centre point (last row).
    probabilities: np.ndarray
    epochs_run: int

    @property
    def centre_probabilities(self) -> np.ndarray:
        return self.probabilities[-1]


def train_and_evaluate(adapter: FrameworkAdapter, device: Device, data: spec.MlpData) -> MlpOutcome:
    import numpy as np

    trained = adapter.train_mlp(spec.mlp_recipe(data), device)
    points = np.vstack([data.samples, np.array([spec.CENTRE_POINT], dtype=np.float32)])
    probabilities = np.asarray(trained.predict(points), dtype=np.float64)
    training = probabilities[: len(data.labels)]
    accuracy = float(np.mean(training.argmax(axis=1) == data.labels))
    # Mean cross-entropy of the trained net, clipped like MXNet's CrossEntropy metric.
    picked = training[np.arange(len(data.labels)), data.labels]
    final_loss = float(np.mean(-np.log(np.maximum(picked, 1e-12))))
    return MlpOutcome(
        accuracy=accuracy,
        initial_loss=float(trained.epoch_losses[0]) if trained.epoch_losses else math.nan,
        final_loss=final_loss,
        train_time_s=trained.train_time_s,
        probabilities=probabilities,
        epochs_run=len(trained.epoch_losses),
    )


def check_mlp(run: WorkloadRun) -> CheckResult:
    import numpy as np

    min_accuracy = run.settings.mlp_min_accuracy
    data = spec.make_dataset(run.settings.mlp_draws)
    outcome = train_and_evaluate(run.adapter, run.device, data)
    centre = outcome.centre_probabilities
    centre_class = int(np.argmax(centre))
    measurements: dict = {
        "accuracy": round(outcome.accuracy, 6),
        "final_loss": outcome.final_loss,
        "initial_loss": outcome.initial_loss,
        "train_time_s": round(outcome.train_time_s, 4),
        "samples": len(data.labels),
        "draws": data.draws,
        "epochs": outcome.epochs_run,
        "p_class1_at_centre": float(centre[spec.CENTRE_EXPECTED_CLASS]),
        "min_accuracy": min_accuracy,
    }
    problems: list[str] = []
    if outcome.epochs_run != spec.EPOCHS:
        problems.append(f"ran {outcome.epochs_run} epochs, expected {spec.EPOCHS}")
    if not outcome.accuracy >= min_accuracy:
        problems.append(f"training accuracy {outcome.accuracy:.3f} < {min_accuracy:g} required")
    if not outcome.final_loss < outcome.initial_loss:
        problems.append(
            f"loss did not fall ({outcome.initial_loss:.4g} → {outcome.final_loss:.4g})"
        )
    if centre_class != spec.CENTRE_EXPECTED_CLASS:
        problems.append(
            f"predict([{list(spec.CENTRE_POINT)}]) gave class {centre_class} "
            f"(p1 = {centre[1]:.3f}), expected {spec.CENTRE_EXPECTED_CLASS}"
        )

    if run.device.gpu is None:
        agreement = "GPU-vs-CPU agreement not applicable (runs on the CPU)"
    else:
        cpu = run.cached(
            ("mlp-cpu-reference", data.draws),
            lambda: train_and_evaluate(run.adapter, run.adapter.device(None), data),
        )
        difference = float(np.max(np.abs(outcome.probabilities - cpu.probabilities)))
        measurements["cpu_gpu_max_abs_diff"] = difference
        measurements["cpu_accuracy"] = round(cpu.accuracy, 6)
        measurements["cpu_train_time_s"] = round(cpu.train_time_s, 4)
        tolerance = spec.AGREEMENT_TOLERANCE
        if not difference <= tolerance:
            problems.append(
                f"predictions differ from the CPU run by {difference:.2e} > {tolerance:g}"
            )
        if outcome.accuracy != cpu.accuracy:
            problems.append(
                f"accuracy {outcome.accuracy:.4f} differs from the CPU run's {cpu.accuracy:.4f}"
            )
        agreement = f"agrees with the CPU run within {difference:.1e} (≤ {tolerance:g})"

    where = f"{len(data.labels)} points x {outcome.epochs_run} epochs on {run.device.label}"
    if problems:
        return failed(CHECK_ID, f"{where}: {'; '.join(problems)}", measurements=measurements)
    return passed(
        CHECK_ID,
        f"{where} in {outcome.train_time_s:.2f} s: accuracy {outcome.accuracy:.3f} "
        f"≥ {min_accuracy:g}, loss {outcome.initial_loss:.3f} → {outcome.final_loss:.2g}, "
        f"p1({spec.CENTRE_POINT[0]}, {spec.CENTRE_POINT[1]}) = {centre[1]:.4f}; {agreement}",
        measurements=measurements,
    )
