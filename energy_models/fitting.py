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
from scipy.optimize import nnls
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LassoCV
from sklearn.model_selection import KFold

from energy_models.errors import EnergyModelError
from energy_models.features import (
    CALL_GROUPS,
    LayerTable,
    base_variables,
    feature_matrix,
    polynomial_features,
)
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


def rmspe(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root-mean-square percentage error, percent."""
    rel = (np.asarray(predicted) - np.asarray(actual)) / np.asarray(actual)
    return float(100 * np.sqrt(np.mean(rel**2))) if rel.size else float("nan")


def _relative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(x / y[:, None], np.ones(len(y)), rcond=None)
    return coef


def _relative_design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows divided by their target, columns scaled to unit root-mean-square.

    Lasso's penalty must see comparable columns of the design it actually fits (the
    relative one, uncentred since there is no intercept); scaling ``x`` before dividing by
    ``y`` lets large-mean columns such as ``log(macs)`` dominate the penalty path.
    """
    a = x / y[:, None]
    scale = np.sqrt(np.mean(a**2, axis=0))
    scale[scale == 0] = 1.0
    return a / scale


def _lasso_support(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, float]:
    a = _relative_design(x, y)
    cv = KFold(n_splits=min(folds, len(y)), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lasso = LassoCV(cv=cv, fit_intercept=False, max_iter=5000, tol=1e-4, eps=1e-4)
        lasso.fit(a, np.ones(len(y)))
    return lasso.coef_ != 0, float(lasso.alpha_)


def _support_at(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lasso = Lasso(alpha=alpha, fit_intercept=False, max_iter=5000, tol=1e-4)
        lasso.fit(_relative_design(x, y), np.ones(len(y)))
    return lasso.coef_ != 0


def _refit(x: np.ndarray, y: np.ndarray, support: np.ndarray) -> np.ndarray:
    coef = np.zeros(x.shape[1])
    if support.any():
        coef[support] = _relative_lstsq(x[:, support], y)
    return coef


def fit_polynomial(
    values: np.ndarray, y: np.ndarray, kind: str, folds: int = 5, seed: int = 0
) -> tuple[PolynomialModel, float]:
    """Fit one target (runtime or power) of one kind; returns the model and its CV RMSPE.

    Args:
        values: (n, len(RAW_FIELDS)) raw layer rows.
        y: (n,) positive targets.
        kind: the model kind (chooses the base variables).
        folds: cross-validation folds.
        seed: seed of the fold shuffle.
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
        coef = _relative_lstsq(feature_matrix(values, names), y)
        model = PolynomialModel(names, tuple(float(c) for c in coef), floor)
        return model, rmspe(model.predict(values), y)
    names = polynomial_features(base)
    x = feature_matrix(values, names)
    support, alpha = _lasso_support(x, y, folds, seed)
    model = PolynomialModel(names, tuple(float(c) for c in _refit(x, y, support)), floor)
    return model, _cv_rmspe(x, y, alpha, floor, folds, seed)


def _cv_rmspe(x, y, alpha: float, floor: float, folds: int, seed: int) -> float:
    predicted = np.empty_like(y)
    for train, test in KFold(min(folds, len(y)), shuffle=True, random_state=seed + 1).split(x):
        coef = _refit(x[train], y[train], _support_at(x[train], y[train], alpha))
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
    table, latency, power = _layer_arrays(records)
    models = {}
    for kind in sorted(set(table.kinds.tolist())):
        rows = table.mask(kind)
        runtime, runtime_err = fit_polynomial(table.values[rows], latency[rows], kind, folds, seed)
        pw, power_err = fit_polynomial(table.values[rows], power[rows], kind, folds, seed)
        models[kind] = LayerModel(kind, runtime, pw, int(rows.sum()), runtime_err, power_err)
    return models


def network_tables(records: Sequence[Mapping[str, Any]]) -> LayerTable:
    """The layer table of the network records (network i = ``records[i]``)."""
    return LayerTable.from_networks(
        [[descriptor_from_dict(d) for d in r["layers"]] for r in records]
    )


def fit_network_model(
    layers: Mapping[str, LayerModel], records: Sequence[Mapping[str, Any]]
) -> NetworkModel:
    """Fit layer-sum scale, per-call overheads and fixed overhead on whole networks."""
    if len(records) < MIN_NETWORKS:
        raise EnergyModelError(
            f"the profile has {len(records)} network records; at least {MIN_NETWORKS} are "
            "needed to fit the runtime's overheads (run `acnn profile` without --skip-networks)"
        )
    table = network_tables(records)
    bare = NetworkModel(1.0, dict.fromkeys(CALL_GROUPS, 0.0), 0.0, 0.0)
    partial = _partial_predictor(layers, bare).predict_table(table)
    layer_sum = partial.latency_ms
    x = np.column_stack([layer_sum, table.group_counts(), np.ones(len(records))])
    y = np.asarray([float(r["latency_ms"]) for r in records])
    coef, _ = nnls(x / y[:, None], np.ones(len(y)))
    scale, per_call, overhead = coef[0], coef[1:-1], coef[-1]
    if scale <= 0:
        raise EnergyModelError("network fit gave the layers no weight; the profile is unusable")
    measured_power = np.asarray([float(r["power_w"]) for r in records])
    return NetworkModel(
        layer_scale=float(scale),
        per_call_ms={g: float(v) for g, v in zip(CALL_GROUPS, per_call, strict=True)},
        overhead_ms=float(overhead),
        overhead_power_w=float(np.median(measured_power)),
    )


def fit_flops_baseline(records: Sequence[Mapping[str, Any]]) -> FlopsBaseline:
    """Latency proportional to (and affine in) MACs, on relative errors, same networks."""
    mmacs = np.asarray([float(r["macs"]) for r in records]) / 1e6
    y = np.asarray([float(r["latency_ms"]) for r in records])
    proportional = float(np.sum(mmacs / y) / np.sum((mmacs / y) ** 2))
    affine = _relative_lstsq(np.column_stack([mmacs, np.ones(len(y))]), y)
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


def fit_predictor(data: ProfileData, folds: int = 5, seed: int = 0) -> EnergyPredictor:
    """Fit a complete predictor from a profile directory's records."""
    settings = data.settings
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
            "seed": seed,
            "profile_settings": dict(settings),
        },
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
