"""The seed's two-layer MLP trained on the device, judged the same way for every framework."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from verify.registry import Judgement, check, fail, ok
from verify.workloads import spec

if TYPE_CHECKING:
    import numpy as np

    from verify.frameworks import Device, FrameworkAdapter
    from verify.workloads.spec import WorkloadRun


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


def _own_problems(outcome: MlpOutcome, min_accuracy: float) -> list[str]:
    """What is wrong with this run on its own: epochs, accuracy, loss, the centre's class."""
    problems = []
    if outcome.epochs_run != spec.EPOCHS:
        problems.append(f"ran {outcome.epochs_run} epochs, expected {spec.EPOCHS}")
    if not outcome.accuracy >= min_accuracy:
        problems.append(f"training accuracy {outcome.accuracy:.3f} < {min_accuracy:g} required")
    if not outcome.final_loss < outcome.initial_loss:
        problems.append(
            f"loss did not fall ({outcome.initial_loss:.4g} → {outcome.final_loss:.4g})"
        )
    centre = outcome.centre_probabilities
    centre_class = int(centre.argmax())
    if centre_class != spec.CENTRE_EXPECTED_CLASS:
        problems.append(
            f"predict([{list(spec.CENTRE_POINT)}]) gave class {centre_class} "
            f"(p1 = {centre[1]:.3f}), expected {spec.CENTRE_EXPECTED_CLASS}"
        )
    return problems


def _cpu_agreement(
    run: WorkloadRun, data: spec.MlpData, outcome: MlpOutcome
) -> tuple[str, dict[str, float], list[str]]:
    """(summary, measurements, problems) of a GPU run against one CPU run of the same recipe,
    shared by every GPU: they differ in summation order only, so a wrong kernel stands out."""
    import numpy as np

    if run.device.gpu is None:
        return "GPU-vs-CPU agreement not applicable (runs on the CPU)", {}, []
    cpu = run.cached(
        ("mlp-cpu-reference", data.draws),
        lambda: train_and_evaluate(run.adapter, run.adapter.device(None), data),
    )
    difference = float(np.max(np.abs(outcome.probabilities - cpu.probabilities)))
    measured = {
        "cpu_gpu_max_abs_diff": difference,
        "cpu_accuracy": round(cpu.accuracy, 6),
        "cpu_train_time_s": round(cpu.train_time_s, 4),
    }
    tolerance = spec.AGREEMENT_TOLERANCE
    problems = []
    if not difference <= tolerance:
        problems.append(f"predictions differ from the CPU run by {difference:.2e} > {tolerance:g}")
    if outcome.accuracy != cpu.accuracy:
        problems.append(
            f"accuracy {outcome.accuracy:.4f} differs from the CPU run's {cpu.accuracy:.4f}"
        )
    return f"agrees with the CPU run within {difference:.1e} (≤ {tolerance:g})", measured, problems


@check("workload.mlp", description="the seed's MLP trains to mlp_min_accuracy, agrees with CPU")
def check_mlp(run: WorkloadRun) -> Judgement:
    min_accuracy = run.setting("mlp_min_accuracy")
    data = spec.make_dataset(run.setting("mlp_samples"))
    outcome = train_and_evaluate(run.adapter, run.device, data)
    centre = outcome.centre_probabilities
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
    agreement, measured, disagreements = _cpu_agreement(run, data, outcome)
    measurements.update(measured)
    problems = [*_own_problems(outcome, min_accuracy), *disagreements]
    where = f"{len(data.labels)} points x {outcome.epochs_run} epochs on {run.device.label}"
    if problems:
        return fail(f"{where}: {'; '.join(problems)}", **measurements)
    return ok(
        f"{where} in {outcome.train_time_s:.2f} s: accuracy {outcome.accuracy:.3f} "
        f"≥ {min_accuracy:g}, loss {outcome.initial_loss:.3f} → {outcome.final_loss:.2g}, "
        f"p1({spec.CENTRE_POINT[0]}, {spec.CENTRE_POINT[1]}) = {centre[1]:.4f}; {agreement}",
        **measurements,
    )
