"""Accuracy of a predictor on held-out profile data (pure: records in, numbers out).

Reported in the form of NeuralPower's Tables 2-3 (per-layer-type RMSPE and model size)
and, at network level, the mean absolute percentage error and the share of networks
predicted within +-10% (nn-Meter's metric), beside a FLOPs baseline fitted on the same
data as the predictor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from energy_models.features import LayerTable
from energy_models.fitting import kernel_table, network_tables, rmspe
from energy_models.layer_builder import descriptor_from_dict
from energy_models.predictor import EnergyPredictor

WITHIN = 0.10


@dataclass(frozen=True)
class LayerKindAccuracy:
    """Held-out accuracy of one layer kind's models (errors in percent)."""

    kind: str
    n: int
    runtime_rmspe: float
    power_rmspe: float
    runtime_terms: int
    power_terms: int
    cv_runtime_rmspe: float


@dataclass(frozen=True)
class TargetAccuracy:
    """Network-level errors for one target: MAPE and RMSPE in percent, share within 10%."""

    mape: float
    rmspe: float
    within_10pct: float


def _target(predicted: np.ndarray, actual: np.ndarray) -> TargetAccuracy:
    if actual.size == 0:
        return TargetAccuracy(float("nan"), float("nan"), float("nan"))
    rel = np.abs(predicted - actual) / actual
    return TargetAccuracy(
        mape=float(100 * rel.mean()),
        rmspe=rmspe(predicted, actual),
        within_10pct=float(100 * np.mean(rel <= WITHIN)),
    )


@dataclass(frozen=True)
class AccuracyReport:
    """Everything ``acnn energy-report`` prints."""

    predictor_source: str
    estimated: bool
    layers: tuple[LayerKindAccuracy, ...]
    cross_validated_layers: tuple[LayerKindAccuracy, ...]
    n_networks: int
    n_excluded: int
    runtime: TargetAccuracy
    power: TargetAccuracy
    energy: TargetAccuracy
    flops_runtime: TargetAccuracy
    flops_affine_runtime: TargetAccuracy
    flops_energy: TargetAccuracy
    per_family: Mapping[str, TargetAccuracy]
    session_speed_ratio: float
    n_anchors: int
    runtime_drift_corrected: TargetAccuracy
    repeatability: TargetAccuracy

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["network_mape"] = self.runtime.mape
        d["within_10pct"] = self.runtime.within_10pct
        d["flops_baseline_mape"] = self.flops_runtime.mape
        d["flops_affine_baseline_mape"] = self.flops_affine_runtime.mape
        d["energy_label"] = "estimated" if self.estimated else "measured"
        return d


def repeatability(records: Sequence[Mapping[str, Any]]) -> TargetAccuracy:
    """The measurement's own noise floor: each network's median over its odd timing rounds
    as a "prediction" of the median over its even rounds (records with >= 2 rounds).

    Each half is a median of about half the rounds, so it is noisier than the all-round
    median a predictor is checked against (about twice as noisy, with noise falling as
    1/sqrt(rounds)): this row bounds how noisy the truth is from above.
    """
    odd, even = [], []
    for record in records:
        rounds = [float(v) for v in record.get("round_medians_ms") or ()]
        if len(rounds) >= 2:
            odd.append(float(np.median(rounds[1::2])))
            even.append(float(np.median(rounds[0::2])))
    return _target(np.asarray(odd), np.asarray(even))


def session_speed_ratio(
    predictor: EnergyPredictor, records: Sequence[Mapping[str, Any]]
) -> tuple[float, int]:
    """Median latency ratio (this profile / the fit's) over the anchor networks in both.

    Returns:
        (ratio, number of anchors); ratio 1.0 with 0 anchors when none are shared. Above 1
        the held-out session ran slower than the fit session.
    """
    fitted = predictor.provenance.get("anchors_ms", {})
    ratios = [
        float(r["latency_ms"]) / float(fitted[r["id"]])
        for r in records
        if r["id"] in fitted and float(fitted[r["id"]]) > 0
    ]
    return (float(np.median(ratios)), len(ratios)) if ratios else (1.0, 0)


def layer_accuracy(
    predictor: EnergyPredictor, records: Sequence[Mapping[str, Any]], exclude: set[str]
) -> tuple[LayerKindAccuracy, ...]:
    """Per-kind RMSPE on layer records whose id is not in ``exclude`` (the fit's ids)."""
    held = [r for r in records if r["id"] not in exclude and r["layer"]]
    if not held:
        return ()
    table = LayerTable.from_networks([[descriptor_from_dict(r["layer"])] for r in held])
    known = np.isin(table.kinds, list(predictor.layers))
    latency = np.asarray([float(r["latency_ms"]) for r in held])
    power = np.asarray([float(r["power_w"]) for r in held])
    rows = []
    for kind in sorted(set(table.kinds[known].tolist())):
        mask = table.mask(kind)
        model = predictor.layers[kind]
        values = table.values[mask]
        rows.append(
            LayerKindAccuracy(
                kind=kind,
                n=int(mask.sum()),
                runtime_rmspe=rmspe(model.runtime.predict(values), latency[mask]),
                power_rmspe=rmspe(model.power.predict(values), power[mask]),
                runtime_terms=model.runtime.size,
                power_terms=model.power.size,
                cv_runtime_rmspe=model.cv_rmspe_runtime,
            )
        )
    return tuple(rows)


def cross_validated_layers(predictor: EnergyPredictor) -> tuple[LayerKindAccuracy, ...]:
    """Per-kind k-fold cross-validated RMSPE on the fit data, as the fit recorded it."""
    return tuple(
        LayerKindAccuracy(
            kind=kind,
            n=model.n_samples,
            runtime_rmspe=model.cv_rmspe_runtime,
            power_rmspe=model.cv_rmspe_power,
            runtime_terms=model.runtime.size,
            power_terms=model.power.size,
            cv_runtime_rmspe=model.cv_rmspe_runtime,
        )
        for kind, model in sorted(predictor.layers.items())
    )


def accuracy_report(
    predictor: EnergyPredictor,
    layer_records: Sequence[Mapping[str, Any]],
    network_records: Sequence[Mapping[str, Any]],
    fit_layer_ids: set[str] | None = None,
) -> AccuracyReport:
    """Compare predictions with held-out measurements.

    Networks the predictor was fitted on (``predictor.fit_networks``) are excluded and
    counted in ``n_excluded``; so are layer configurations in ``fit_layer_ids``. Anchor
    networks shared with the fit profile give the session speed ratio; the drift-corrected
    runtime error scales predictions by it (the raw error is the headline figure).
    """
    fitted = set(predictor.fit_networks)
    held = [r for r in network_records if r["id"] not in fitted]
    if predictor.kernels and held and all("kernels" in r for r in held):
        # what the runtime ran: the kernels read off its optimised graph at profile time
        prediction = predictor.predict_kernels(kernel_table(held))
    else:
        prediction = predictor.predict_table(network_tables(held))
    latency = np.asarray([float(r["latency_ms"]) for r in held])
    energy = np.asarray([float(r["energy_mj"]) for r in held])
    power = np.asarray([float(r["power_w"]) for r in held])
    macs = np.asarray([float(r["macs"]) for r in held])
    base = predictor.flops_baseline
    families = np.asarray([str(r.get("family", "?")) for r in held])
    per_family = {
        f: _target(prediction.latency_ms[families == f], latency[families == f])
        for f in sorted(set(families.tolist()))
    }
    ratio, n_anchors = session_speed_ratio(predictor, network_records)
    return AccuracyReport(
        predictor_source=predictor.source,
        estimated=predictor.estimated,
        layers=layer_accuracy(predictor, layer_records, fit_layer_ids or set()),
        cross_validated_layers=cross_validated_layers(predictor),
        n_networks=len(held),
        n_excluded=len(network_records) - len(held),
        runtime=_target(prediction.latency_ms, latency),
        power=_target(prediction.power_w, power),
        energy=_target(prediction.energy_mj, energy),
        flops_runtime=_target(base.latency_ms(macs), latency),
        flops_affine_runtime=_target(base.latency_ms(macs, affine=True), latency),
        flops_energy=_target(base.latency_ms(macs) * base.power_w, energy),
        per_family=per_family,
        session_speed_ratio=ratio,
        n_anchors=n_anchors,
        runtime_drift_corrected=_target(prediction.latency_ms * ratio, latency),
        repeatability=repeatability(held),
    )
