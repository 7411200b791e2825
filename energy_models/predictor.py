"""The fitted layer-wise energy predictor: vectorised prediction and its versioned file.

A predictor belongs to one (device, inference runtime, threads) triple. Per model kind it
holds a sparse polynomial for runtime (ms) and one for power (W). A layer timed alone does
not cost the same inside a network (framework dispatch between calls, caches), so the
network model maps each layer's isolated runtime ``t`` to its in-network share

    share(t) = max(0, scale[g] * t - discount * max(0, t - knee_ms))

(``g`` the layer's overhead group: a multiplicative inflation that stops growing past the
knee, since dispatch costs do not grow with a layer's size) and adds the runtime's fixed
costs, all fitted on whole networks:

    latency_ms = sum(share) + sum_g per_call_ms[g] * calls_g + overhead_ms
    energy_mj  = sum(share * layer power) + (sum_g per_call_ms[g] * calls_g + overhead_ms) * P_o

where ``calls_g`` counts the network's layer calls in group ``g`` and ``P_o`` is the fitted
power during the overheads. The file is JSON: loading it runs no code.

A *kernel-level* predictor (``kernels`` names the fusion rules, for ONNX Runtime) prices
what the runtime executes instead of torch layers: a layer table is first rewritten into
the runtime's kernels (:func:`energy_models.kernels.fuse_table`: convolution + batch norm
+ activation as one kernel, layout reorders as kernels of their own), whose models were
fitted on per-kernel times from the runtime's own profiler inside real networks; the same
network model then adds the per-kernel and per-inference overheads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from energy_models.errors import EnergyModelError
from energy_models.features import CALL_GROUPS, RAW_FIELDS, LayerTable, feature_matrix

FORMAT_NAME = "acnn-energy-predictor"
FORMAT_VERSION = 1
# Fitted terms are in raw units (ms, W, per MAC or element); a fit gives magnitudes of a few
# hundred at most, so a term beyond this is a damaged or hostile file, and could overflow.
MAX_MAGNITUDE = 1e12


@dataclass(frozen=True)
class PolynomialModel:
    """A linear model over named features (raw units), clipped below at ``floor``."""

    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    floor: float

    def __post_init__(self) -> None:
        if len(self.features) != len(self.coefficients):
            raise EnergyModelError(
                f"model has {len(self.features)} features but {len(self.coefficients)} coefficients"
            )
        if not all(math.isfinite(c) for c in (*self.coefficients, self.floor)):
            raise EnergyModelError("model coefficients must be finite numbers")

    @property
    def size(self) -> int:
        """Number of non-zero terms (the model size NeuralPower reports)."""
        return sum(1 for c in self.coefficients if c != 0.0)

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Predict for raw rows (n, len(RAW_FIELDS)); returns (n,)."""
        used = [i for i, c in enumerate(self.coefficients) if c != 0.0]
        if not used:
            return np.full(len(values), self.floor)
        x = feature_matrix(values, [self.features[i] for i in used])
        y = x @ np.asarray([self.coefficients[i] for i in used])
        return np.maximum(y, self.floor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "coefficients": list(self.coefficients),
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolynomialModel:
        return cls(
            features=tuple(str(f) for f in d["features"]),
            coefficients=tuple(float(c) for c in d["coefficients"]),
            floor=float(d["floor"]),
        )


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EnergyModelError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _numbers(value: Any, key: str) -> Any:
    """Every number under ``value`` (nested mappings and lists) with its dotted key."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _numbers(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{key}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield key, value


def _check_magnitudes(d: Mapping[str, Any]) -> None:
    """Refuse a non-finite or absurd (> :data:`MAX_MAGNITUDE`) term of a model, naming its key.

    Only the terms that enter predictions are checked (cross-validation errors and counts
    are reports); values of the wrong type are left to the constructors' checks.
    """
    parts = [("network", d.get("network")), ("flops_baseline", d.get("flops_baseline"))]
    layers = d.get("layers")
    if isinstance(layers, Mapping):
        for kind, entry in layers.items():
            if isinstance(entry, Mapping):
                parts += [(f"layers.{kind}.{m}", entry.get(m)) for m in ("runtime", "power")]
    for name, part in parts:
        for key, value in _numbers(part, name):
            if not (math.isfinite(value) and abs(value) <= MAX_MAGNITUDE):
                raise EnergyModelError(
                    f"{key} is {value:g}, not a finite number of magnitude <= "
                    f"{MAX_MAGNITUDE:g}: the file is damaged; re-run `acnn fit-energy`"
                )


def _layer_models(d: Mapping[str, Any]) -> dict[str, LayerModel]:
    models = {}
    for kind, entry in d.items():
        model = LayerModel.from_dict(entry)
        if model.kind != kind:
            raise EnergyModelError(f"layer model under {kind!r} says it is for {model.kind!r}")
        for part in (model.runtime, model.power):  # unknown feature names fail here, not later
            feature_matrix(np.zeros((1, len(RAW_FIELDS))), part.features)
        models[kind] = model
    return models


@dataclass(frozen=True)
class LayerModel:
    """Runtime and power models of one model kind, with their cross-validated errors.

    Attributes:
        kind: the model kind (``"conv2d"``, ``"conv2d_depthwise"``, ``"relu"``, ...).
        runtime: predicts milliseconds per call at batch 1.
        power: predicts watts while the layer runs.
        n_samples: profiled layer configurations it was fitted on.
        cv_rmspe_runtime: k-fold cross-validated RMSPE of runtime, percent.
        cv_rmspe_power: likewise for power.
    """

    kind: str
    runtime: PolynomialModel
    power: PolynomialModel
    n_samples: int
    cv_rmspe_runtime: float
    cv_rmspe_power: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["runtime"], d["power"] = self.runtime.to_dict(), self.power.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerModel:
        return cls(
            kind=str(d["kind"]),
            runtime=PolynomialModel.from_dict(d["runtime"]),
            power=PolynomialModel.from_dict(d["power"]),
            n_samples=int(d["n_samples"]),
            cv_rmspe_runtime=float(d["cv_rmspe_runtime"]),
            cv_rmspe_power=float(d["cv_rmspe_power"]),
        )


@dataclass(frozen=True)
class NetworkModel:
    """Whole-network terms (see the module docstring for the formula).

    Attributes:
        scale: in-network inflation of isolated layer runtimes, per overhead group.
        knee_ms: isolated runtime above which the inflation stops growing.
        discount: slope removed above the knee.
        per_call_ms: fixed cost per layer call, per overhead group.
        overhead_ms: fixed cost per inference.
        overhead_power_w: power during the fixed costs.
    """

    scale: Mapping[str, float]
    knee_ms: float
    discount: float
    per_call_ms: Mapping[str, float]
    overhead_ms: float
    overhead_power_w: float

    def shares_ms(self, latency_ms: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """In-network share of each layer from its isolated runtime and group index."""
        scale = np.asarray([self.scale.get(g, 1.0) for g in CALL_GROUPS])[groups]
        excess = np.maximum(latency_ms - self.knee_ms, 0.0)
        return np.maximum(scale * latency_ms - self.discount * excess, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": dict(self.scale),
            "knee_ms": self.knee_ms,
            "discount": self.discount,
            "per_call_ms": dict(self.per_call_ms),
            "overhead_ms": self.overhead_ms,
            "overhead_power_w": self.overhead_power_w,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetworkModel:
        unknown = (set(d["per_call_ms"]) | set(d["scale"])) - set(CALL_GROUPS)
        if unknown:
            raise EnergyModelError(f"unknown overhead groups {sorted(unknown)}")
        return cls(
            scale={str(k): _finite(v, k) for k, v in d["scale"].items()},
            knee_ms=_finite(d["knee_ms"], "knee_ms"),
            discount=_finite(d["discount"], "discount"),
            per_call_ms={str(k): _finite(v, k) for k, v in d["per_call_ms"].items()},
            overhead_ms=_finite(d["overhead_ms"], "overhead_ms"),
            overhead_power_w=_finite(d["overhead_power_w"], "overhead_power_w"),
        )


@dataclass(frozen=True)
class FlopsBaseline:
    """The baseline the layer-wise model must beat, fitted on the same networks.

    ``latency = ms_per_mmac * MMACs`` (proportional) and ``affine_ms_per_mmac * MMACs +
    affine_intercept_ms`` (affine); energy = latency * ``power_w``.
    """

    ms_per_mmac: float
    affine_ms_per_mmac: float
    affine_intercept_ms: float
    power_w: float

    def latency_ms(self, macs: np.ndarray, affine: bool = False) -> np.ndarray:
        mmacs = np.asarray(macs, dtype=np.float64) / 1e6
        if affine:
            return self.affine_ms_per_mmac * mmacs + self.affine_intercept_ms
        return self.ms_per_mmac * mmacs


@dataclass(frozen=True)
class TablePrediction:
    """Predictions for a :class:`LayerTable`; per-row arrays then per-network arrays."""

    layer_latency_ms: np.ndarray
    layer_power_w: np.ndarray
    latency_ms: np.ndarray
    energy_mj: np.ndarray
    overhead_ms: np.ndarray
    rows: LayerTable | None = None  # the table the per-row arrays describe (kernels)

    @property
    def power_w(self) -> np.ndarray:
        """Mean power per network over its predicted latency."""
        return self.energy_mj / np.maximum(self.latency_ms, 1e-12)


def _check_finite(prediction: TablePrediction) -> None:
    """A prediction that overflowed (a huge layer under large terms) is an error, never
    a ``nan`` or ``inf`` passed on as a figure."""
    for name in ("layer_latency_ms", "layer_power_w", "latency_ms", "energy_mj"):
        values = getattr(prediction, name)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values)
        if bad.any():
            raise EnergyModelError(
                f"predicted {name.removeprefix('layer_').replace('_', ' ')} is not a finite "
                f"number ({values[bad][0]!r}): the network is far outside what the predictor "
                "was fitted on"
            )


def _kernel_rules(value: Any) -> str | None:
    from energy_models.kernels import rules_block

    if value is not None:
        rules_block(str(value))  # raises for rules this acnn does not know
    return value


@dataclass(frozen=True)
class EnergyPredictor:
    """A fitted predictor for one (device, runtime, threads) triple.

    Attributes:
        device: device profile name the profile was taken on.
        runtime: inference runtime (``torch``, ``torchscript``, ``onnxruntime``).
        threads: intra-op threads the profile used.
        torch_version: torch version of the profile.
        created: ISO date of the fit.
        power_source: where the profile's power came from (``declared``, ``rapl``, ...).
        estimated: True when power is a declared model, not a measurement.
        layers: one :class:`LayerModel` per model kind.
        network: the whole-network overhead model.
        flops_baseline: the FLOPs baseline fitted on the same data.
        fit_networks: ids of the networks the overheads were fitted on.
        provenance: profile directory, record counts and fit settings.
        kernels: fusion rules of a kernel-level predictor (``layers`` then holds one
            model per kernel kind); None for a layer-wise one.
    """

    device: str
    runtime: str
    threads: int
    torch_version: str
    created: str
    power_source: str
    estimated: bool
    layers: Mapping[str, LayerModel]
    network: NetworkModel
    flops_baseline: FlopsBaseline
    fit_networks: tuple[str, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)
    kernels: str | None = None

    @property
    def source(self) -> str:
        """One line saying what the numbers are and where they come from."""
        label = "estimated" if self.estimated else "measured"
        level = "kernel-level" if self.kernels else "layer-wise"
        return (
            f"{level} predictor for {self.device}/{self.runtime}/{self.threads} threads; "
            f"power {self.power_source} ({label})"
        )

    def check_kinds(self, table: LayerTable) -> None:
        """Raise if the table has a model kind this predictor has no model for."""
        missing = sorted(set(table.kinds.tolist()) - set(self.layers))
        if missing:
            raise EnergyModelError(
                f"predictor has no model for {'kernel' if self.kernels else 'layer'} kind(s) "
                f"{', '.join(missing)}; "
                "re-profile with a sweep that includes them "
                f"(known: {', '.join(sorted(self.layers))})"
            )

    def predict_table(self, table: LayerTable) -> TablePrediction:
        """Predict every network of ``table`` (torch layers) with array operations; a
        kernel-level predictor first rewrites the layers into the runtime's kernels."""
        if self.kernels:
            from energy_models.kernels import fuse_table, rules_block

            return self.predict_kernels(fuse_table(table, rules_block(self.kernels)))
        return self.predict_kernels(table)

    def predict_kernels(self, table: LayerTable) -> TablePrediction:
        """Predict a table whose rows are this predictor's model kinds already (kernels
        read off the runtime's optimised graph, or layers for a layer-wise predictor)."""
        self.check_kinds(table)
        latency = np.zeros(len(table))
        power = np.zeros(len(table))
        for kind in set(table.kinds.tolist()):
            rows = table.mask(kind)
            model = self.layers[kind]
            latency[rows] = model.runtime.predict(table.values[rows])
            power[rows] = model.power.predict(table.values[rows])
        net = self.network
        shares = net.shares_ms(latency, table.group_index())
        per_call = np.asarray([net.per_call_ms.get(g, 0.0) for g in CALL_GROUPS])
        overhead = table.group_counts() @ per_call + net.overhead_ms
        layer_energy = table.sum_per_network(shares * power)
        prediction = TablePrediction(
            layer_latency_ms=latency,
            layer_power_w=power,
            latency_ms=table.sum_per_network(shares) + overhead,
            energy_mj=layer_energy + overhead * net.overhead_power_w,
            overhead_ms=overhead,
            rows=table,
        )
        _check_finite(prediction)
        return prediction

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "device": self.device,
            "runtime": self.runtime,
            "threads": self.threads,
            "torch_version": self.torch_version,
            "created": self.created,
            "power_source": self.power_source,
            "estimated": self.estimated,
            "layers": {k: m.to_dict() for k, m in sorted(self.layers.items())},
            "network": self.network.to_dict(),
            "flops_baseline": asdict(self.flops_baseline),
            "fit_networks": list(self.fit_networks),
            "provenance": dict(self.provenance),
            "kernels": self.kernels,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnergyPredictor:
        """Rebuild from :meth:`to_dict` output; refuses other formats and versions."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT_NAME:
            raise EnergyModelError(f"not an acnn energy predictor (format != {FORMAT_NAME!r})")
        version = d.get("format_version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise EnergyModelError(
                f"predictor format version {version!r} is not supported "
                f"(this acnn reads version {FORMAT_VERSION}); re-run `acnn fit-energy`"
            )
        _check_magnitudes(d)
        try:
            return cls(
                device=str(d["device"]),
                runtime=str(d["runtime"]),
                threads=int(d["threads"]),
                torch_version=str(d["torch_version"]),
                created=str(d["created"]),
                power_source=str(d["power_source"]),
                estimated=bool(d["estimated"]),
                layers=_layer_models(d["layers"]),
                network=NetworkModel.from_dict(d["network"]),
                flops_baseline=FlopsBaseline(
                    **{k: _finite(v, k) for k, v in d["flops_baseline"].items()}
                ),
                fit_networks=tuple(str(n) for n in d.get("fit_networks", ())),
                provenance=dict(d.get("provenance", {})),
                kernels=_kernel_rules(d.get("kernels")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EnergyModelError(f"malformed predictor: {type(exc).__name__}: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        """Write the predictor as JSON (atomically: a temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EnergyPredictor:
        """Read a predictor file; a missing, corrupt or foreign file is an EnergyModelError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise EnergyModelError(f"predictor file {path} does not exist") from exc
        except OSError as exc:
            raise EnergyModelError(f"cannot read predictor file {path}: {exc.strerror}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EnergyModelError(f"predictor file {path} is not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except EnergyModelError as exc:
            raise EnergyModelError(f"{path}: {exc}") from exc
