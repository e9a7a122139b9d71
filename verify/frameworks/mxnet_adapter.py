"""Apache MXNet 1.9 adapter: the reference framework, used the way the seed uses it."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import time
import warnings
from typing import TYPE_CHECKING, Any

from verify.frameworks.base import Device, FrameworkAdapter, MlpRecipe, TrainedMlp

if TYPE_CHECKING:
    import numpy as np


class MXNetAdapter(FrameworkAdapter):
    name = "mxnet"

    def _import(self) -> Any:
        # Without this, every executor bind prints "Subgraph backend MKLDNN is activated" to
        # stderr, in the middle of the suite's progress table.
        os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
        return importlib.import_module("mxnet")

    def _features(self) -> dict[str, bool]:
        features = self.module().runtime.Features()
        return {name: bool(feature.enabled) for name, feature in features.items()}

    def _num_gpus(self) -> int | None:
        return int(self.module().context.num_gpus())

    def _cuda_version(self) -> str | None:
        # MXNet does not expose its CUDA version; the wheels say it in their name (mxnet-cu112).
        for distribution in importlib.metadata.packages_distributions().get("mxnet", []):
            match = re.fullmatch(r"mxnet[-_]cu(\d+?)(\d)", distribution.lower())
            if match:
                return f"{match.group(1)}.{match.group(2)}"
        return None

    def device(self, gpu_index: int | None) -> Device:
        mx = self.module()
        context = mx.cpu(0) if gpu_index is None else mx.gpu(gpu_index)
        return Device(gpu=gpu_index, label=str(context), native=context)

    def to_device(self, array: np.ndarray, device: Device) -> Any:
        return self.module().nd.array(array, ctx=device.native, dtype=array.dtype)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return tensor.asnumpy()

    def gradient_of_sum_product(
        self, a: np.ndarray, b: np.ndarray, c: np.ndarray, device: Device
    ) -> tuple[np.ndarray, np.ndarray]:
        mx = self.module()
        ctx = device.native
        symbol_a, symbol_b, symbol_c = (mx.sym.Variable(n) for n in ("a", "b", "c"))
        output = (symbol_a + symbol_b) * symbol_c
        inputs = {
            "a": mx.nd.array(a, ctx=ctx),
            "b": mx.nd.array(b, ctx=ctx),
            "c": mx.nd.array(c, ctx=ctx),
        }
        # NaN, not zeros: a backward pass that never writes the gradient must not look right.
        grad_a = mx.nd.full(a.shape, float("nan"), ctx=ctx)
        executor = output.bind(ctx=ctx, args=inputs, args_grad={"a": grad_a})
        executor.forward(is_train=True)
        forward = executor.outputs[0].asnumpy()
        executor.backward(out_grads=mx.nd.ones(forward.shape, ctx=ctx))
        return forward, grad_a.asnumpy()

    def matmul(self, a: Any, b: Any) -> Any:
        return self.module().nd.dot(a, b)

    def matmul_dtypes(self, device: Device) -> frozenset[str]:
        # MXNet 1.9's dot has float16 kernels only on the GPU ("dot only supports
        # float32/float64 for CPU").
        if device.gpu is None:
            return frozenset({"float32", "float64"})
        return frozenset({"float16", "float32", "float64"})

    def random_normal(self, shape: tuple[int, ...], dtype: str, device: Device, seed: int) -> Any:
        mx = self.module()
        mx.random.seed(seed, ctx=device.native)
        return mx.nd.random.normal(shape=shape, dtype=dtype, ctx=device.native)

    def pinned_host_buffer(self, shape: tuple[int, ...], dtype: str, device: Device) -> Any:
        mx = self.module()
        # cpu_pinned is plain host memory in a CPU-only build, page-locked in a CUDA one.
        context = mx.cpu(0) if device.gpu is None else mx.cpu_pinned(0)
        return mx.nd.ones(shape, ctx=context, dtype=dtype)

    def copy_to_device(self, host_tensor: Any, device: Device) -> Any:
        return host_tensor.copyto(device.native)

    def copy_to_host(self, tensor: Any, host_tensor: Any) -> None:
        tensor.copyto(host_tensor)

    def synchronize(self, device: Device) -> None:
        self.module().nd.waitall()

    def memory_info(self, device: Device) -> tuple[int, int] | None:
        if device.gpu is None:
            return None
        free, total = self.module().context.gpu_memory_info(device.gpu)
        return int(free), int(total)

    def train_mlp(self, recipe: MlpRecipe, device: Device) -> TrainedMlp:
        """The seed's network and `mx.model.FeedForward` training, from the recipe's weights.

        FeedForward (deprecated, still in 1.9.1) rather than `mx.mod.Module`: it is the seed's own
        API and trains the 1000 full-batch epochs in ~0.35 s on the CPU where Module's
        per-batch Python bookkeeping takes ~3 s, which matters for a suite that runs it per GPU.
        """
        mx = self.module()
        ctx = device.native
        mlp = self._mlp_symbol(recipe)
        initial = {
            "fc1_weight": recipe.fc1_weight,
            "fc1_bias": recipe.fc1_bias,
            "fc2_weight": recipe.fc2_weight,
            "fc2_bias": recipe.fc2_bias,
        }
        arg_params = {name: mx.nd.array(value) for name, value in initial.items()}
        batch_size = len(recipe.labels)
        train_iter = mx.io.NDArrayIter(recipe.samples, recipe.labels, batch_size)
        epoch_losses: list[float] = []
        epoch_accuracies: list[float] = []
        metric = mx.metric.CompositeEvalMetric([mx.metric.Accuracy(), mx.metric.CrossEntropy()])

        def record_epoch(params: Any) -> None:
            # Full batch: one batch per epoch, so the metric holds exactly this epoch's forward.
            _, (accuracy, loss) = params.eval_metric.get()
            epoch_accuracies.append(float(accuracy))
            epoch_losses.append(float(loss))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model = mx.model.FeedForward(
                symbol=mlp,
                ctx=ctx,
                num_epoch=recipe.epochs,
                learning_rate=recipe.learning_rate,
                momentum=recipe.momentum,
                arg_params=arg_params,
                aux_params={},
            )
            started = time.perf_counter()
            model.fit(X=train_iter, eval_metric=metric, batch_end_callback=record_epoch)
            mx.nd.waitall()
            train_time_s = time.perf_counter() - started

        def predict(points: np.ndarray) -> np.ndarray:
            import numpy as np

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return np.asarray(model.predict(np.asarray(points, dtype=np.float32)))

        return TrainedMlp(epoch_losses, epoch_accuracies, train_time_s, predict)

    def _mlp_symbol(self, recipe: MlpRecipe) -> Any:
        """The seed's symbol: FullyConnected → sigmoid → FullyConnected → SoftmaxOutput."""
        mx = self.module()
        data = mx.sym.Variable("data")
        fc1 = mx.sym.FullyConnected(data=data, name="fc1", num_hidden=recipe.fc1_weight.shape[0])
        sigmoid1 = mx.sym.Activation(data=fc1, name="sigmoid1", act_type="sigmoid")
        fc2 = mx.sym.FullyConnected(
            data=sigmoid1, name="fc2", num_hidden=recipe.fc2_weight.shape[0]
        )
        return mx.sym.SoftmaxOutput(data=fc2, name="softmax")
