"""What every framework adapter is and returns; the contract is in verify/frameworks/__init__.py.

Kept apart from the package's __init__, which picks the adapter: the adapters import these
types, and __init__ imports the adapters.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # numpy arrives with the framework; the snapshot imports this module even where none is.
    import numpy as np


@dataclass(frozen=True)
class Device:
    """Where an operation runs: `native` is the framework's own context/device object."""

    gpu: int | None
    label: str
    native: Any


@dataclass(frozen=True)
class MlpRecipe:
    """Everything one MLP training run needs; built once by `verify.workloads.spec`.

    The network is Linear(in→hidden) → sigmoid → Linear(hidden→classes) → softmax, its sizes
    given by the initial weight shapes (out_features, in_features), as both frameworks store them.
    """

    samples: np.ndarray  # (n, 2) float32
    labels: np.ndarray  # (n,) int64
    fc1_weight: np.ndarray
    fc1_bias: np.ndarray
    fc2_weight: np.ndarray
    fc2_bias: np.ndarray
    epochs: int
    learning_rate: float
    momentum: float


@dataclass(frozen=True)
class TrainedMlp:
    """What a training run gives back: per-epoch training metrics and the trained predictor.

    `epoch_losses[e]` / `epoch_accuracies[e]` are measured on the forward pass of epoch e, i.e.
    before that epoch's update, so index 0 is the untrained network.
    """

    epoch_losses: list[float]
    epoch_accuracies: list[float]
    train_time_s: float
    # points (n, 2) → class probabilities (n, classes), both NumPy.
    predict: Callable[[np.ndarray], np.ndarray]


def not_probed(name: str, import_error: str | None = None) -> dict[str, Any]:
    """A probe's keys before anything is known: what a failed import or adapter reports."""
    return {
        "name": name,
        "version": None,
        "import_error": import_error,
        "features": {},
        "num_gpus": None,
        "cuda_version": None,
        "cuda_archs": None,
    }


def describe_error(error: BaseException) -> str:
    """One line for a report: `Type: message`.

    MXNet's errors carry a C++ traceback first and the cause on the last line; other errors
    (torch's CUDA errors among them) state the cause first and add hints after it.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    type_name = type(error).__name__
    if type_name == "MXNetError" or (lines and lines[0].startswith("Traceback")):
        meaningful = [
            line for line in lines if not line.startswith(("File ", "Traceback", "[bt]", "Stack"))
        ]
        message = meaningful[-1] if meaningful else ""
    else:
        message = lines[0] if lines else ""
    if message.startswith(f"{type_name}:"):
        return message
    return f"{type_name}: {message}" if message else type_name


class FrameworkAdapter(abc.ABC):
    """Common shape of the adapters; see the module docstring for the contract."""

    name: str = ""

    def __init__(self) -> None:
        self._module: Any = None

    @abc.abstractmethod
    def _import(self) -> Any:
        """Import the framework and return its top-level module (raises on failure)."""

    def module(self) -> Any:
        if self._module is None:
            self._module = self._import()
        return self._module

    def probe(self) -> dict[str, Any]:
        info = not_probed(self.name)
        try:
            self.module()
        except Exception as error:  # an import failure is data here, never a crash
            info["import_error"] = describe_error(error)
            return info
        # Each piece is read on its own so one broken query cannot hide the others.
        for key, reader in (
            ("version", self.version),
            ("features", self._features),
            ("num_gpus", self._num_gpus),
            ("cuda_version", self._cuda_version),
            ("cuda_archs", self._cuda_archs),
        ):
            try:
                info[key] = reader()
            except Exception as error:
                info.setdefault("probe_errors", {})[key] = describe_error(error)
        return info

    def version(self) -> str | None:
        return str(self.module().__version__)

    @abc.abstractmethod
    def _features(self) -> dict[str, bool]: ...

    @abc.abstractmethod
    def _num_gpus(self) -> int | None: ...

    @abc.abstractmethod
    def _cuda_version(self) -> str | None: ...

    def _cuda_archs(self) -> list[int] | None:
        return None

    @abc.abstractmethod
    def device(self, gpu_index: int | None) -> Device: ...

    @abc.abstractmethod
    def to_device(self, array: np.ndarray, device: Device) -> Any: ...

    @abc.abstractmethod
    def to_numpy(self, tensor: Any) -> np.ndarray: ...

    def elementwise_sum_product(self, a: Any, b: Any, c: Any) -> Any:
        # Both frameworks overload the operators imperatively on their own tensors.
        return (a + b) * c

    @abc.abstractmethod
    def gradient_of_sum_product(
        self, a: np.ndarray, b: np.ndarray, c: np.ndarray, device: Device
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def matmul(self, a: Any, b: Any) -> Any: ...

    @abc.abstractmethod
    def matmul_dtypes(self, device: Device) -> frozenset[str]: ...

    @abc.abstractmethod
    def random_normal(
        self, shape: tuple[int, ...], dtype: str, device: Device, seed: int
    ) -> Any: ...

    @abc.abstractmethod
    def pinned_host_buffer(self, shape: tuple[int, ...], dtype: str, device: Device) -> Any: ...

    @abc.abstractmethod
    def copy_to_device(self, host_tensor: Any, device: Device) -> Any: ...

    @abc.abstractmethod
    def copy_to_host(self, tensor: Any, host_tensor: Any) -> None: ...

    @abc.abstractmethod
    def synchronize(self, device: Device) -> None: ...

    def memory_info(self, device: Device) -> tuple[int, int] | None:
        """(free, total) bytes of the device's memory; None where the framework cannot say."""
        return None

    @abc.abstractmethod
    def train_mlp(self, recipe: MlpRecipe, device: Device) -> TrainedMlp: ...
