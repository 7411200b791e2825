"""The human-readable energy report: a predictor's accuracy on a held-out profile as
tables (pure: an :class:`~energy_models.accuracy.AccuracyReport` in, a string out).

``acnn energy-report`` prints it, and ``benchmarks/energy_model_accuracy.py`` prints the
same text beside its JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adaptive_cnn.tables import format_table

if TYPE_CHECKING:
    from energy_models.accuracy import AccuracyReport, TargetAccuracy

ESTIMATE_NOTE = "energy is ESTIMATED from the device profile's declared power model (no sensor)"


def format_report(report: AccuracyReport) -> str:
    """The report's tables: per layer kind, then network level, then the session note."""
    lines = [report.predictor_source, ""]
    layers = report.layers or report.cross_validated_layers
    caption = (
        "held-out layer configurations (not in the fit data)"
        if report.layers
        else "no held-out layer records: 5-fold cross-validation on the fit data"
    )
    rows = [
        (r.kind, r.n, r.runtime_rmspe, r.runtime_terms, r.power_rmspe, r.power_terms)
        for r in layers
    ]
    headers = ("layer kind", "configs", "runtime RMSPE %", "terms", "power RMSPE %", "terms")
    lines += [caption, format_table(headers, rows), ""]
    lines.append(
        format_table(("network level", "MAPE %", "RMSPE %", "within 10% (%)"), _rows(report))
    )
    lines.append(
        f"\n{report.n_networks} held-out networks ({report.n_excluded} excluded: in the fit "
        f"data); session speed ratio {report.session_speed_ratio:.3f} (held-out / fit latency "
        f"of {report.n_anchors} anchor networks timed in both; drift-corrected rows scale by it)"
    )
    if report.estimated:
        lines.append(ESTIMATE_NOTE)
    return "\n".join(lines)


def _rows(report: AccuracyReport) -> list[tuple]:
    rows = [
        ("runtime (layer-wise)", *_cells(report.runtime)),
        ("runtime (layer-wise, drift-corrected)", *_cells(report.runtime_drift_corrected)),
        ("runtime (FLOPs-proportional)", *_cells(report.flops_runtime)),
        ("measurement vs itself (odd vs even rounds)", *_cells(report.repeatability)),
        ("runtime (FLOPs affine)", *_cells(report.flops_affine_runtime)),
        ("power (layer-wise)", *_cells(report.power)),
        ("energy (layer-wise)", *_cells(report.energy)),
        ("energy (FLOPs-proportional)", *_cells(report.flops_energy)),
    ]
    return rows + [(f"runtime, {f} only", *_cells(t)) for f, t in report.per_family.items()]


def _cells(t: TargetAccuracy) -> tuple:
    return (round(t.mape, 2), round(t.rmspe, 2), round(t.within_10pct, 1))
