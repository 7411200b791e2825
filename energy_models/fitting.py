"""Fit the layer-wise predictor from a profile (NeuralPower's sparse polynomial models).

Per model kind, runtime and power are each a polynomial of the layer's hyper-parameters
plus FLOP and memory terms (:func:`energy_models.features.polynomial_features`). Terms
are selected by Lasso with k-fold cross-validation on relative errors (each row divided
by its target, so small and large layers weigh alike), then the selected terms are refit
by least squares. Whole-network overheads are fitted on the profile's network set with
non-negative least squares, also on relative errors.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear, nnls
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LassoCV
from sklearn.model_selection import KFold

from energy_models.errors import EnergyModelError
from energy_models.features import (
    CALL_GROUPS,
    RAW_FIELDS,
    LayerTable,
    base_variables,
    feature_matrix,
    polynomial_features,
)
from energy_models.kernels import ort_rules
from energy_models.layer_builder import descriptor_from_dict
from energy_models.predictor import (
    EnergyPredictor,
    FlopsBaseline,
    LayerModel,
    NetworkModel,
    PolynomialModel,
)
from energy_models.profile_store import ProfileData

MIN_POLYNOMIAL_SAMPLES = 12
MIN_NETWORKS = 5
# Runtime fits weigh errors relative above this and absolute below: a 3 ms layer's relative
# error carries into its network's latency, a few microseconds' error does not.
RUNTIME_ERROR_FLOOR_MS = 0.1
# Isolated runtime above which a layer's in-network inflation stops growing (see predictor).
KNEE_MS = 0.2


def rmspe(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root-mean-square percentage error, percent."""
    rel = (np.asarray(predicted) - np.asarray(actual)) / np.asarray(actual)
    return float(100 * np.sqrt(np.mean(rel**2))) if rel.size else float("nan")


def _weights(y: np.ndarray, error_floor: float) -> np.ndarray:
    """Row weights 1 / (y + floor): relative errors for large targets, absolute below."""
    return 1.0 / (y + error_floor)


def _weighted_lstsq(x: np.ndarray, y: np.ndarray, error_floor: float = 0.0) -> np.ndarray:
    w = _weights(y, error_floor)
    coef, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
    return coef


def _weighted_design(
    x: np.ndarray, y: np.ndarray, error_floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted rows with columns scaled to unit root-mean-square, and the weighted target.

    Lasso's penalty must see comparable columns of the design it actually fits (weighted,
    uncentred since there is no intercept); scaling ``x`` before weighting lets
    large-mean columns such as ``log(macs)`` dominate the penalty path.
    """
    w = _weights(y, error_floor)
    a = x * w[:, None]
    scale = np.sqrt(np.mean(a**2, axis=0))
    scale[scale == 0] = 1.0
    return a / scale, y * w


def _lasso_support(
    x: np.ndarray, y: np.ndarray, error_floor: float, folds: int, seed: int
) -> tuple[np.ndarray, float]:
    a, b = _weighted_design(x, y, error_floor)
    cv = KFold(n_splits=min(folds, len(y)), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lasso = LassoCV(cv=cv, fit_intercept=False, max_iter=5000, tol=1e-4, eps=1e-4)
        lasso.fit(a, b)
    return lasso.coef_ != 0, float(lasso.alpha_)


def _support_at(x: np.ndarray, y: np.ndarray, error_floor: float, alpha: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lasso = Lasso(alpha=alpha, fit_intercept=False, max_iter=5000, tol=1e-4)
        lasso.fit(*_weighted_design(x, y, error_floor))
    return lasso.coef_ != 0


def _refit(x: np.ndarray, y: np.ndarray, support: np.ndarray, error_floor: float) -> np.ndarray:
    coef = np.zeros(x.shape[1])
    if support.any():
        coef[support] = _weighted_lstsq(x[:, support], y, error_floor)
    return coef


def fit_polynomial(
    values: np.ndarray,
    y: np.ndarray,
    kind: str,
    folds: int = 5,
    seed: int = 0,
    error_floor: float = 0.0,
) -> tuple[PolynomialModel, float]:
    """Fit one target (runtime or power) of one kind; returns the model and its CV RMSPE.

    Rows are weighted by 1 / (y + ``error_floor``): relative errors for targets well above
    the floor, absolute errors below it (a layer of a few microseconds barely moves a
    network's latency, while a 3 ms layer's relative error carries straight into it).

    Args:
        values: (n, len(RAW_FIELDS)) raw layer rows.
        y: (n,) positive targets.
        kind: the model kind (chooses the base variables).
        folds: cross-validation folds.
        seed: seed of the fold shuffle.
        error_floor: in the units of ``y``; 0 fits pure relative errors.
    """
    if np.any(y <= 0) or not np.all(np.isfinite(y)):
        raise EnergyModelError(f"{kind}: targets must be positive and finite")
    floor = float(0.5 * y.min())
    if np.ptp(y) <= 1e-9 * abs(y.mean()) or len(y) < 3:
        return PolynomialModel(("1",), (float(np.median(y)),), floor), rmspe(
            np.full_like(y, np.median(y)), y
        )
    base = base_variables(kind)
    if len(y) < MIN_POLYNOMIAL_SAMPLES:
        names = ("1", base[0])
        coef = _weighted_lstsq(feature_matrix(values, names), y, error_floor)
        model = PolynomialModel(names, tuple(float(c) for c in coef), floor)
        return model, rmspe(model.predict(values), y)
    names = polynomial_features(base)
    x = feature_matrix(values, names)
    support, alpha = _lasso_support(x, y, error_floor, folds, seed)
    coef = _refit(x, y, support, error_floor)
    model = PolynomialModel(names, tuple(float(c) for c in coef), floor)
    return model, _cv_rmspe(x, y, alpha, floor, error_floor, folds, seed)


def _cv_rmspe(x, y, alpha: float, floor: float, error_floor: float, folds: int, seed: int) -> float:
    predicted = np.empty_like(y)
    for train, test in KFold(min(folds, len(y)), shuffle=True, random_state=seed + 1).split(x):
        support = _support_at(x[train], y[train], error_floor, alpha)
        coef = _refit(x[train], y[train], support, error_floor)
        predicted[test] = np.maximum(x[test] @ coef, floor)
    return rmspe(predicted, y)


def _layer_arrays(
    records: Sequence[Mapping[str, Any]],
) -> tuple[LayerTable, np.ndarray, np.ndarray]:
    table = LayerTable.from_networks([[descriptor_from_dict(r["layer"])] for r in records])
    latency = np.asarray([float(r["latency_ms"]) for r in records])
    power = np.asarray([float(r["power_w"]) for r in records])
    return table, latency, power


def fit_layer_models(
    records: Sequence[Mapping[str, Any]], folds: int = 5, seed: int = 0
) -> dict[str, LayerModel]:
    """One :class:`LayerModel` per model kind found in the layer records."""
    if not records:
        raise EnergyModelError("the profile has no layer records; run `acnn profile` first")
    return _fit_kinds(*_layer_arrays(records), folds, seed)


# ONNX Runtime's profiler reports whole microseconds: a node under one reads as 0.
MIN_KERNEL_MS = 0.0005
# Kernels of a fused runtime take microseconds: errors weigh relative above 5 us.
KERNEL_ERROR_FLOOR_MS = 0.005
# The runtime's profiler adds a few microseconds to every node it times; the network fit
# may take up to this much back per kernel call.
PROFILER_OVERHEAD_BOUND_MS = 0.01


def kernel_samples(
    records: Sequence[Mapping[str, Any]],
) -> tuple[LayerTable, np.ndarray, np.ndarray]:
    """Every profiled kernel of the records (layers timed alone and networks): a table
    with one row per kernel (its kind and row), its time and the record's power."""
    timed = [r for r in records if "kernels" in r]
    latency = [max(float(k["latency_ms"]), MIN_KERNEL_MS) for r in timed for k in r["kernels"]]
    power = [float(r["power_w"]) for r in timed for _ in r["kernels"]]
    return kernel_table(timed), np.asarray(latency), np.asarray(power)


def kernel_table(records: Sequence[Mapping[str, Any]]) -> LayerTable:
    """The kernel table of network records as the runtime ran them (network i =
    ``records[i]``): the kernels read off its optimised graph when they were profiled."""
    kinds, rows, index, names = [], [], [], []
    for i, record in enumerate(records):
        if "kernels" not in record:
            raise EnergyModelError(
                f"network record {record.get('id')!r} has no kernel times; re-profile it in "
                "onnxruntime with this acnn"
            )
        for kernel in record["kernels"]:
            kinds.append(str(kernel["kind"]))
            rows.append([float(v) for v in kernel["row"]])
            index.append(i)
            names.append(str(kernel.get("layer", "")))
    return LayerTable(
        kinds=np.asarray(kinds, dtype=object),
        values=np.asarray(rows, dtype=np.float64).reshape(len(rows), len(RAW_FIELDS)),
        network=np.asarray(index, dtype=np.int64),
        n_networks=len(records),
        names=tuple(names),
    )


def fit_kernel_models(
    records: Sequence[Mapping[str, Any]], folds: int = 5, seed: int = 0
) -> dict[str, LayerModel]:
    """One :class:`LayerModel` per kernel kind, fitted on the profiled kernels' times."""
    table, latency, power = kernel_samples(records)
    if not len(table):
        raise EnergyModelError(
            "the profile has no kernel times; profile in onnxruntime with this acnn"
        )
    return _fit_kinds(table, latency, power, folds, seed, KERNEL_ERROR_FLOOR_MS)


def _fit_kinds(
    table: LayerTable,
    latency: np.ndarray,
    power: np.ndarray,
    folds: int,
    seed: int,
    error_floor_ms: float = RUNTIME_ERROR_FLOOR_MS,
) -> dict[str, LayerModel]:
    models = {}
    for kind in sorted(set(table.kinds.tolist())):
        rows = table.mask(kind)
        runtime, runtime_err = fit_polynomial(
            table.values[rows], latency[rows], kind, folds, seed, error_floor_ms
        )
        pw, power_err = fit_polynomial(table.values[rows], power[rows], kind, folds, seed)
        models[kind] = LayerModel(kind, runtime, pw, int(rows.sum()), runtime_err, power_err)
    return models


def network_tables(records: Sequence[Mapping[str, Any]]) -> LayerTable:
    """The layer table of the network records (network i = ``records[i]``)."""
    return LayerTable.from_networks(
        [[descriptor_from_dict(d) for d in r["layers"]] for r in records]
    )


def fit_network_model(
    layers: Mapping[str, LayerModel],
    records: Sequence[Mapping[str, Any]],
    knee_ms: float = KNEE_MS,
    table: LayerTable | None = None,
    kernel_level: bool = False,
) -> NetworkModel:
    """Fit the in-network scales, knee discount, per-call and per-inference overheads.

    Non-negative least squares on relative errors over the profile's whole networks; the
    knee is fixed (``knee_ms``), the rest is fitted.
    """
    if len(records) < MIN_NETWORKS:
        raise EnergyModelError(
            f"the profile has {len(records)} network records; at least {MIN_NETWORKS} are "
            "needed to fit the runtime's overheads (run `acnn profile` without --skip-networks)"
        )
    if table is None:
        table = network_tables(records)
    partial = _partial_predictor(layers, _identity_network())
    latency = partial.predict_kernels(table).layer_latency_ms
    groups = table.group_index()
    per_group = np.column_stack(
        [table.sum_per_network(latency * (groups == g)) for g in range(len(CALL_GROUPS))]
    )
    excess = table.sum_per_network(np.maximum(latency - knee_ms, 0.0))
    x = np.column_stack([per_group, -excess, table.group_counts(), np.ones(len(records))])
    y = np.asarray([float(r["latency_ms"]) for r in records])
    if kernel_level:
        coef = _kernel_calibration(x, y)
    else:
        coef, _ = nnls(x / y[:, None], np.ones(len(y)))
    n = len(CALL_GROUPS)
    scale, discount, per_call, overhead = coef[:n], coef[n], coef[n + 1 : 2 * n + 1], coef[-1]
    if not np.any(scale > 0):
        raise EnergyModelError("network fit gave the layers no weight; the profile is unusable")
    measured_power = np.asarray([float(r["power_w"]) for r in records])
    return NetworkModel(
        scale={g: float(v) for g, v in zip(CALL_GROUPS, scale, strict=True)},
        knee_ms=float(knee_ms),
        discount=float(discount),
        per_call_ms={g: float(v) for g, v in zip(CALL_GROUPS, per_call, strict=True)},
        overhead_ms=float(overhead),
        overhead_power_w=float(np.median(measured_power)),
    )


# Kernel-level calibration: scales for the groups that carry the compute, one for the rest.
_OWN_SCALE = ("conv", "linear")


def _kernel_calibration(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The network terms of a kernel-level predictor, in :func:`fit_network_model`'s
    column layout, from few parameters so that they carry to networks outside the fit
    set: a scale for convolutions, one for gemms, one for every other kernel, one cost per
    kernel call (negative down to the profiler's own per-node cost, which the kernel
    times include) and one per inference; no knee."""
    n = len(CALL_GROUPS)
    own = [CALL_GROUPS.index(g) for g in _OWN_SCALE]
    rest = [i for i in range(n) if i not in own]
    reduced = np.column_stack(
        [x[:, own], x[:, rest].sum(axis=1), x[:, n + 1 : 2 * n + 1].sum(axis=1), x[:, -1]]
    )
    k = len(own)
    lower = np.zeros(k + 3)
    lower[k + 1] = -PROFILER_OVERHEAD_BOUND_MS
    upper = np.full(k + 3, np.inf)
    upper[k + 1] = PROFILER_OVERHEAD_BOUND_MS
    fit = lsq_linear(reduced / y[:, None], np.ones(len(y)), bounds=(lower, upper)).x
    coef = np.zeros(x.shape[1])
    coef[own] = fit[:k]
    coef[rest] = fit[k]
    coef[n + 1 : 2 * n + 1] = fit[k + 1]
    coef[-1] = fit[k + 2]
    return coef


def _identity_network() -> NetworkModel:
    return NetworkModel(dict.fromkeys(CALL_GROUPS, 1.0), 0.0, 0.0, {}, 0.0, 0.0)


def fit_flops_baseline(records: Sequence[Mapping[str, Any]]) -> FlopsBaseline:
    """Latency proportional to (and affine in) MACs, on relative errors, same networks."""
    mmacs = np.asarray([float(r["macs"]) for r in records]) / 1e6
    y = np.asarray([float(r["latency_ms"]) for r in records])
    proportional = float(np.sum(mmacs / y) / np.sum((mmacs / y) ** 2))
    affine = _weighted_lstsq(np.column_stack([mmacs, np.ones(len(y))]), y)
    power = float(np.median([float(r["power_w"]) for r in records]))
    return FlopsBaseline(proportional, float(affine[0]), float(affine[1]), power)


def _partial_predictor(layers: Mapping[str, LayerModel], network: NetworkModel) -> EnergyPredictor:
    return EnergyPredictor(
        device="",
        runtime="",
        threads=1,
        torch_version="",
        created="",
        power_source="",
        estimated=True,
        layers=layers,
        network=network,
        flops_baseline=FlopsBaseline(0.0, 0.0, 0.0, 0.0),
    )


def _nchwc_block(settings: Mapping[str, Any]) -> int:
    """The NCHWc block of the host a kernel-level profile was timed on: recorded with the
    profile; a profile from before it was recorded was timed here (probed now)."""
    if "nchwc_block" in settings:
        return int(settings["nchwc_block"])
    from energy_models.runtimes import nchwc_block  # ONNX Runtime and torch: only here

    return nchwc_block()


def fit_predictor(data: ProfileData, folds: int = 5, seed: int = 0) -> EnergyPredictor:
    """Fit a complete predictor from a profile directory's records."""
    settings = data.settings
    kernel_level = any("kernels" in r for r in (*data.layers, *data.networks))
    if kernel_level:  # a fused runtime: price the kernels it ran, not the torch layers
        layers = fit_kernel_models((*data.layers, *data.networks), folds, seed)
        network = fit_network_model(
            layers, data.networks, table=kernel_table(data.networks), kernel_level=True
        )
    else:
        layers = fit_layer_models(data.layers, folds, seed)
        network = fit_network_model(layers, data.networks)
    sources = sorted({str(r["power_source"]) for r in (*data.layers, *data.networks)})
    labels = {str(r["energy_label"]) for r in (*data.layers, *data.networks)}
    return EnergyPredictor(
        device=str(settings["device"]),
        runtime=str(settings["runtime"]),
        threads=int(settings["threads"]),
        torch_version=str(settings["torch_version"]),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        power_source="+".join(sources),
        estimated="estimated" in labels,
        layers=layers,
        network=network,
        flops_baseline=fit_flops_baseline(data.networks),
        fit_networks=tuple(str(r["id"]) for r in data.networks),
        provenance={
            "profile": str(data.root),
            "layer_records": len(data.layers),
            "network_records": len(data.networks),
            "folds": folds,
            "fit_layer_ids": [str(r["id"]) for r in data.layers],
            "anchors_ms": {
                str(r["id"]): float(r["latency_ms"]) for r in data.networks if r.get("anchor")
            },
            "seed": seed,
            "profile_settings": dict(settings),
        },
        kernels=ort_rules(_nchwc_block(settings)) if kernel_level else None,
    )


def attach_power_trace(data: ProfileData, trace: Any) -> ProfileData:
    """Replace every record's power with a power meter's mean over the record's window.

    Args:
        data: the profile; records carry wall-clock ``t0``/``t1`` (Unix seconds).
        trace: a :class:`energy_models.power_meter.PowerMeterTrace`.

    Raises:
        EnergyModelError: a record's window is not covered by the trace.
    """

    def attach(record: Mapping[str, Any]) -> dict[str, Any]:
        power = trace.mean_power_w(float(record["t0"]), float(record["t1"]))
        return {
            **record,
            "power_w": power,
            "energy_mj": float(record["latency_ms"]) * power,
            "power_source": "power-meter-csv",
            "energy_label": "measured",
        }

    return ProfileData(
        root=data.root,
        settings=data.settings,
        layers=tuple(attach(r) for r in data.layers),
        networks=tuple(attach(r) for r in data.networks),
    )
