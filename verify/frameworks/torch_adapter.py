"""PyTorch adapter: the same workloads for labs that moved on from MXNet (and for sm_90+ GPUs,
which the mxnet-cu112 wheel has no kernels for)."""

from __future__ import annotations

import importlib
import re
import time
from typing import TYPE_CHECKING, Any

from verify.frameworks.base import Device, FrameworkAdapter, MlpRecipe, TrainedMlp

if TYPE_CHECKING:
    import numpy as np


class TorchAdapter(FrameworkAdapter):
    name = "torch"

    def _import(self) -> Any:
        return importlib.import_module("torch")

    def _features(self) -> dict[str, bool]:
        torch = self.module()
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        blas_name = blas.group(1).lower() if blas else ""
        return {
            "CUDA": bool(torch.backends.cuda.is_built()),
            "CUDNN": bool(torch.backends.cudnn.is_available()),
            "BLAS_MKL": blas_name == "mkl",
            "BLAS_OPEN": blas_name in ("open", "openblas"),
            "MKLDNN": bool(torch.backends.mkldnn.is_available()),
            "OPENMP": bool(torch.backends.openmp.is_available()),
        }

    def _num_gpus(self) -> int | None:
        return int(self.module().cuda.device_count())

    def _cuda_version(self) -> str | None:
        return self.module().version.cuda

    def _cuda_archs(self) -> list[int] | None:
        # e.g. ["sm_50", ..., "sm_90", "compute_90"]: compute_* is PTX, which the driver JIT-
        # compiles for newer GPUs, so only the SASS archs count as kernels present.
        archs = self.module().cuda.get_arch_list()
        return sorted({int(arch[3:]) for arch in archs if re.fullmatch(r"sm_\d+", arch)})

    def device(self, gpu_index: int | None) -> Device:
        torch = self.module()
        native = torch.device("cpu") if gpu_index is None else torch.device("cuda", gpu_index)
        return Device(gpu=gpu_index, label=str(native), native=native)

    def to_device(self, array: np.ndarray, device: Device) -> Any:
        # torch.tensor copies (from_numpy would share the host memory on the CPU).
        return self.module().tensor(array, device=device.native)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        # .cpu() is a no-op on the CPU; clone so the result never aliases the tensor.
        return tensor.detach().cpu().clone().numpy()

    def gradient_of_sum_product(
        self, a: np.ndarray, b: np.ndarray, c: np.ndarray, device: Device
    ) -> tuple[np.ndarray, np.ndarray]:
        torch = self.module()
        tensor_a = torch.tensor(a, device=device.native, requires_grad=True)
        tensor_b = torch.tensor(b, device=device.native)
        tensor_c = torch.tensor(c, device=device.native)
        output = (tensor_a + tensor_b) * tensor_c
        output.backward(torch.ones_like(output))
        return self.to_numpy(output), self.to_numpy(tensor_a.grad)

    def matmul(self, a: Any, b: Any) -> Any:
        return self.module().matmul(a, b)

    def matmul_dtypes(self, device: Device) -> frozenset[str]:
        return frozenset({"float16", "float32", "float64"})

    def random_normal(self, shape: tuple[int, ...], dtype: str, device: Device, seed: int) -> Any:
        torch = self.module()
        generator = torch.Generator(device=device.native)
        generator.manual_seed(seed)
        return torch.randn(
            shape, dtype=getattr(torch, dtype), device=device.native, generator=generator
        )

    def pinned_host_buffer(self, shape: tuple[int, ...], dtype: str, device: Device) -> Any:
        torch = self.module()
        # Page-locked memory needs a CUDA context; on the CPU a plain buffer is the honest case.
        return torch.ones(shape, dtype=getattr(torch, dtype), pin_memory=device.gpu is not None)

    def copy_to_device(self, host_tensor: Any, device: Device) -> Any:
        if device.gpu is None:
            return host_tensor.clone()
        return host_tensor.to(device.native, non_blocking=True)

    def copy_to_host(self, tensor: Any, host_tensor: Any) -> None:
        host_tensor.copy_(tensor, non_blocking=tensor.is_cuda)

    def synchronize(self, device: Device) -> None:
        if device.gpu is not None:
            self.module().cuda.synchronize(device.native)

    def memory_info(self, device: Device) -> tuple[int, int] | None:
        if device.gpu is None:
            return None
        free, total = self.module().cuda.mem_get_info(device.native)
        return int(free), int(total)

    def train_mlp(self, recipe: MlpRecipe, device: Device) -> TrainedMlp:
        """The seed's MLP in torch: Linear → sigmoid → Linear, softmax cross-entropy (mean over
        the batch, as MXNet's SoftmaxOutput with FeedForward's rescale_grad=1/batch), SGD with
        momentum 0.99, no dampening or weight decay (torch's buffer form equals MXNet's for a
        constant learning rate)."""
        torch = self.module()
        model = self._mlp(recipe, device)
        # On the CPU the 2x2 layers are far too small to share among threads: intra-op threads
        # only add synchronisation, which made training ~10x slower on a busy 2-core machine.
        threads = torch.get_num_threads()
        if device.gpu is None:
            torch.set_num_threads(1)
        try:
            self.synchronize(device)
            started = time.perf_counter()
            losses, accuracies = self._fit(model, recipe, device)
            self.synchronize(device)
            train_time_s = time.perf_counter() - started
        finally:
            torch.set_num_threads(threads)
        model.eval()

        def predict(points: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                inputs = torch.tensor(points, dtype=torch.float32, device=device.native)
                return self.to_numpy(torch.softmax(model(inputs), dim=1))

        return TrainedMlp(losses.cpu().tolist(), accuracies.cpu().tolist(), train_time_s, predict)

    def _mlp(self, recipe: MlpRecipe, device: Device) -> Any:
        """The network on the device, starting from the recipe's weights."""
        torch = self.module()
        fc1_out, fc1_in = recipe.fc1_weight.shape
        fc2_out, fc2_in = recipe.fc2_weight.shape
        model = torch.nn.Sequential(
            torch.nn.Linear(fc1_in, fc1_out),
            torch.nn.Sigmoid(),
            torch.nn.Linear(fc2_in, fc2_out),
        ).to(device=device.native, dtype=torch.float32)
        with torch.no_grad():
            for layer, weight, bias in (
                (model[0], recipe.fc1_weight, recipe.fc1_bias),
                (model[2], recipe.fc2_weight, recipe.fc2_bias),
            ):
                layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
                layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        return model

    def _fit(self, model: Any, recipe: MlpRecipe, device: Device) -> tuple[Any, Any]:
        """Full-batch training; the loss and accuracy of each epoch's forward pass, as tensors
        on the device (read back after the clock stops)."""
        torch = self.module()
        # torch.optim's functional SGD, the very update torch.optim.SGD.step() applies: the
        # class's constructor imports torch._dynamo (~800 modules), 1-5 s per process on the
        # 2-core CI machine, more than the whole training run.
        from torch.optim.sgd import sgd

        samples = torch.tensor(recipe.samples, dtype=torch.float32, device=device.native)
        labels = torch.tensor(recipe.labels, dtype=torch.int64, device=device.native)
        parameters = list(model.parameters())
        momentum_buffers: list[Any] = [None] * len(parameters)
        # Metrics stay on the device during training: one host sync at the end, not 2000.
        losses = torch.empty(recipe.epochs, device=device.native)
        accuracies = torch.empty(recipe.epochs, device=device.native)
        for epoch in range(recipe.epochs):
            for parameter in parameters:
                parameter.grad = None
            logits = model(samples)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            with torch.no_grad():
                sgd(
                    parameters,
                    [parameter.grad for parameter in parameters],
                    momentum_buffers,
                    weight_decay=0.0,
                    momentum=recipe.momentum,
                    lr=recipe.learning_rate,
                    dampening=0.0,
                    nesterov=False,
                    maximize=False,
                )
                losses[epoch] = loss.detach()
                accuracies[epoch] = (logits.argmax(dim=1) == labels).float().mean()
        return losses, accuracies
