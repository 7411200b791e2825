"""The on-device cascade: local stages, the design's exit policy, the cloud, a fallback.

:class:`EdgeClassifier` runs the local stages of a design on each batch, lets an image
exit at the first stage whose confidence reaches the design's threshold
(:class:`selector.ExitPolicy`), and forwards the rest to the cloud, one request per image
(the transfer the design's energy estimate charges). When the cloud fails (unreachable,
overloaded past the retries, deadline passed, malformed answer) the image gets the most
confident local prediction, marked ``degraded``. Every input gets exactly one
:class:`Answer`, in input order.

Energy per image is the design's predicted energy of each local stage that ran, plus for
a forwarded image the link model's radio and waiting energy for the bytes actually sent
(:mod:`energy_models.communication`): estimates, labelled as such. Beside it, each local
stage call is timed on the device (:class:`adaptive_cnn.energy_check.StageMeter`) and its
latency x the device's power is the measured-latency compute energy, labelled "measured"
where a power sensor was read, else "estimated from latency x declared power".

The stages run in the runtime the design was priced for unless another is asked for;
every energy of such a run carries the label "priced for X, run in Y".
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import torch

from adaptive_cnn.energy_check import (
    LatencyEnergy,
    StageMeter,
    deployed_threads,
    device_power,
    warm_up,
)
from adaptive_cnn.run_folder import RunFolder
from adaptive_cnn.stage import deployed_runtime, example_input, stage_runner
from energy_models.communication import NO_LINK, LinkModel
from energy_models.devices import load_device
from energy_models.power import PowerSource
from rpc.client import CloudClient, CloudError
from selector import confidence


@dataclass(frozen=True, slots=True)
class Answer:
    """The one answer for one input image.

    Attributes:
        index: position of the image in the input.
        label: predicted class index; ``class_name`` its name.
        confidence: the answering stage's top-1 probability.
        stage: the stage that answered (``stage1``.. or ``cloud``).
        degraded: the cloud was wanted but failed; a local stage answered instead.
        energy_mj: predicted device energy (compute + radio), mJ; ``energy_estimated``
            says whether it is an estimate.
        bytes_sent: request bytes sent to the cloud (all attempts).
        latency_ms: from the start of the image's batch to its answer.
        error: why the cloud failed (degraded answers only).
        measured_energy_mj: compute energy of the local stages it passed from their
            measured latency (``stage_latency_ms``, ms each) x the device's power, mJ;
            compare with ``compute_energy_mj``. ``measured_energy_label`` says how.
        energy_label: ``priced for X, run in Y`` where the stages ran in a runtime other
            than the one the design was priced for, else empty.
    """

    index: int
    label: int
    class_name: str
    confidence: float
    stage: str
    degraded: bool
    energy_mj: float
    compute_energy_mj: float
    radio_energy_mj: float
    energy_estimated: bool
    bytes_sent: int
    latency_ms: float
    source: str = ""
    true_label: int | None = None
    error: str | None = None
    measured_energy_mj: float | None = None
    measured_energy_label: str = ""
    stage_latency_ms: tuple[float, ...] = ()
    energy_label: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Summary:
    """Totals over a run of :meth:`EdgeClassifier.classify`.

    ``offload_rate`` is the share of images whose request was put on the wire; a
    ``degraded`` image that was never sent (no cloud configured, cloud unreachable) counts
    in ``degraded`` only, and was charged no bytes and no radio energy.

    ``predicted_compute_mj_per_image`` and ``measured_energy_mj_per_image`` are the local
    compute alone (predicted, and from measured latency x power), their ratio
    ``measured_over_predicted``; ``runtime`` and ``threads`` are what the stages ran in,
    ``pricing`` what the design was priced for, ``energy_label`` as in :class:`Answer`.
    """

    images: int
    accuracy: float | None
    energy_mj_per_image: float
    energy_estimated: bool
    offload_rate: float
    degraded: int
    bytes_sent: int
    mean_latency_ms: float
    exits: dict[str, int]
    predicted_compute_mj_per_image: float = 0.0
    measured_energy_mj_per_image: float | None = None
    measured_energy_label: str = ""
    measured_over_predicted: float | None = None
    power_w: float | None = None
    runtime: str = ""
    threads: int | None = None
    pricing: dict | None = None
    energy_label: str = ""

    def to_dict(self) -> dict:
        return {"summary": True, **asdict(self)}


class EdgeClassifier:
    """Classifies images with a design's cascade on this device.

    Args:
        run: the design run folder.
        cloud: client of the cloud model; None answers forwarded images degraded.
        link: link to charge radio energy to (default: the design's link).
        runtime: ``onnxruntime``, ``torchscript`` or ``torch`` for the local stages (the
            files ``acnn export`` writes); None: the runtime the design was priced for.
        threads: intra-op threads of the stages (ONNX Runtime's; torch's are the
            process's); None: the design's (:func:`~adaptive_cnn.energy_check.deployed_threads`).
        batch_size: images per local batch; at 1 (the default) each image's measured
            stage latencies are its own, at batch 1 as the design priced them.
        concurrency: forwarded images in flight at once.
        power: the device's power source for measured energies (default: its profile's).
        warmup: untimed calls of each stage when the classifier is built.
    """

    def __init__(
        self,
        run: RunFolder,
        cloud: CloudClient | None = None,
        *,
        link: str | None = None,
        runtime: str | None = None,
        threads: int | None = None,
        batch_size: int = 1,
        concurrency: int = 4,
        power: PowerSource | None = None,
        warmup: int = 3,
    ) -> None:
        self.run, self.cloud, self.batch_size = run, cloud, max(1, batch_size)
        self.stages = run.local_stages
        self.runtime = deployed_runtime(run, runtime)
        self.threads = deployed_threads(run, threads)
        self.energy_label = run.pricing.label(self.runtime)
        self.runners = [
            stage_runner(run, s, self.runtime, threads=self.threads) for s in self.stages
        ]
        self.meter = StageMeter(power or device_power(run))
        with torch.inference_mode():  # once per classifier, not per classify() call
            warm_up(self.runners, example_input(run, 1).numpy(), warmup)
        self._names = [s.name for s in self.stages]
        self._class_names = run.input.class_names
        # predicted compute energy of an image that ran stages 0..s
        self._compute_mj = list(np.cumsum([s.energy_mj for s in self.stages]).astype(float))
        self.link, self.idle_power_w = self._link(link or run.link)
        self.estimated = run.energy_source != "measured"  # radio energy: always estimated
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency))

    def _link(self, name: str) -> tuple[LinkModel | None, float]:
        if self.run.cloud_stage is None or name == NO_LINK:
            return None, 0.0
        device = load_device(self.run.device)
        return device.link(name), device.power.idle_w

    def classify(
        self, images: np.ndarray, labels: np.ndarray | None = None, sources: list[str] | None = None
    ) -> tuple[list[Answer], Summary]:
        """Answer every image of ``images`` (N, C, H, W, native pixel scale), in order."""
        answers: list[Answer] = []
        with torch.inference_mode():  # entered once: per call it costs as much as a tiny stage
            self.meter.start()
            for start in range(0, len(images), self.batch_size):
                answers.extend(self._batch(images[start : start + self.batch_size], start))
            energy = self.meter.finish()
        if [a.index for a in answers] != list(range(len(images))):
            raise AssertionError("every input must get exactly one answer, in order")
        if labels is not None or sources is not None:
            answers = [self._annotate(a, labels, sources) for a in answers]
        answers = [self._measured(a, energy) for a in answers]
        return answers, self._summary(answers, energy)

    def _measured(self, a: Answer, energy: LatencyEnergy) -> Answer:
        times = tuple(self.meter.image_ms(a.index))
        return dataclasses.replace(
            a,
            measured_energy_mj=sum(energy.energy_mj(ms) for ms in times),
            measured_energy_label=energy.label,
            stage_latency_ms=times,
            energy_label=self.energy_label,
        )

    def _summary(self, answers: list[Answer], energy: LatencyEnergy) -> Summary:
        n = len(answers) or 1
        predicted = sum(a.compute_energy_mj for a in answers) / n
        measured = sum(a.measured_energy_mj or 0.0 for a in answers) / n
        return dataclasses.replace(
            summarise(answers),
            predicted_compute_mj_per_image=predicted,
            measured_energy_mj_per_image=measured,
            measured_energy_label=energy.label,
            measured_over_predicted=measured / predicted if predicted > 0 else None,
            power_w=energy.power_w,
            runtime=self.runtime,
            threads=self.threads,
            pricing=self.run.pricing.to_dict(),
            energy_label=self.energy_label,
        )

    def _annotate(self, a: Answer, labels, sources) -> Answer:
        fields = a.to_dict()
        if labels is not None:
            fields["true_label"] = int(labels[a.index])
        if sources is not None:
            fields["source"] = sources[a.index]
        return Answer(**fields)

    def _batch(self, images: np.ndarray, offset: int) -> list[Answer]:
        if len(images) == 1 and self.run.policy.metric == "margin":
            return self._single(images, offset)
        started = time.perf_counter()
        out: list[Answer | None] = [None] * len(images)
        seen = []  # (rows, probs, scores) of each stage that ran, for the fallback
        active = np.arange(len(images))
        for s, runner in enumerate(self.runners):
            if not len(active):
                break
            batch = images if len(active) == len(images) else images[active]
            probs = self.meter.call(runner, batch, active + offset)
            scores = confidence(probs, self.run.policy.metric)
            seen.append((active, probs, scores))
            exits = self.run.policy.exits_from_scores(s, scores)
            ms = _ms_since(started)
            self._fill(out, offset, active[exits], probs[exits], s, ms)
            active = active[~exits]
        if len(active):
            self._forward(images, active, offset, started, seen, out)
        return out  # type: ignore[return-value]  # every slot is filled by now

    def _single(self, images: np.ndarray, offset: int) -> list[Answer]:
        """:meth:`_batch` of one image with the margin metric, in plain Python scalars.

        Same exits and answers as the vectorised path; at batch 1 its per-call numpy
        indexing cost as much as a small stage, so the on-device latency pays for it.
        """
        started = time.perf_counter()
        thresholds = self.run.policy.thresholds  # none for a last stage that answers all
        seen = []
        rows = (offset,)
        for s, runner in enumerate(self.runners):
            probs = self.meter.call(runner, images, rows)
            row = probs[0].tolist()
            top2 = sorted(row)[-2:] if len(row) > 1 else [0.0, row[0]]
            margin = top2[1] - top2[0]
            if s >= len(thresholds) or margin >= thresholds[s]:
                label, name = row.index(top2[1]), self._names[s]
                compute = self._compute_mj[s]
                return [
                    Answer(
                        offset, label, self._class_names[label], top2[1], name, False,
                        compute, compute, 0.0, self.estimated, 0, _ms_since(started),
                    )
                ]  # fmt: skip
            seen.append((_ZERO, probs, np.array([margin])))
        out: list[Answer | None] = [None]
        self._forward(images, _ZERO, offset, started, seen, out)
        return out  # type: ignore[return-value]  # filled by _forward

    def _fill(self, out, offset: int, rows: np.ndarray, probs: np.ndarray, stage: int, ms: float):
        """Answers of the images ``rows`` exiting at local ``stage`` (vectorised per stage)."""
        labels = probs.argmax(axis=1)
        tops = probs[np.arange(len(labels)), labels].tolist()
        name, compute, names = self._names[stage], self._compute_mj[stage], self._class_names
        for i, label, top in zip(rows.tolist(), labels.tolist(), tops, strict=True):
            out[i] = Answer(
                offset + i, label, names[label], top, name, False, compute, compute, 0.0,
                self.estimated, 0, ms,
            )  # fmt: skip

    def _best_local(self, i: int, seen) -> tuple[np.ndarray, int]:
        """The most confident local (probs, stage) of image ``i``; later stages win ties."""
        best = None
        for s, (rows, probs, scores) in enumerate(seen):
            j = int(np.searchsorted(rows, i))
            if best is None or scores[j] >= best[2]:
                best = (probs[j], s, scores[j])
        return best[0], best[1]

    def _forward(self, images, active, offset, started, seen, out) -> None:
        compute = self._compute_mj[len(seen) - 1]
        best = {int(i): self._best_local(int(i), seen) for i in active}
        jobs = {
            i: self._pool.submit(self._ask_cloud, images[i : i + 1], probs, compute)
            for i, (probs, _) in best.items()
        }
        for i, job in jobs.items():
            result = job.result()
            ms = _ms_since(started)
            if isinstance(result, CloudError) or result is None:
                radio, sent = self._failed_radio_mj(result), getattr(result, "bytes_sent", 0)
                error = str(result) if result is not None else "no cloud configured"
                answer = self._answer(offset + i, best[i][0], best[i][1], compute, ms)
                out[i] = _replace(answer, degraded=True, error=error, radio=radio, sent=sent)
            else:
                radio = self._radio_mj(
                    result.bytes_sent - result.failed_bytes, result.bytes_received
                )
                radio += self._failed_radio_mj_bytes(result.failed_bytes)
                answer = self._answer(offset + i, result.probs[0], None, compute, ms)
                out[i] = _replace(answer, radio=radio, sent=result.bytes_sent)

    def _ask_cloud(self, image: np.ndarray, probs: np.ndarray, compute_mj: float):
        if self.cloud is None:
            return None
        params = {
            "acnn.local_confidence": float(probs.max()),
            "acnn.device_energy_mj": float(compute_mj),
        }
        try:
            return self.cloud.infer(image, params)
        except CloudError as exc:
            return exc

    def _radio_mj(self, sent: int, received: int) -> float:
        if self.link is None:
            return 0.0
        return float(
            self.link.offload_energy_mj(
                sent,
                idle_power_w=self.idle_power_w,
                cloud_latency_ms=self.run.cloud_latency_ms,
                response_bytes=received,
            )
        )

    def _failed_radio_mj(self, error: CloudError | None) -> float:
        return 0.0 if error is None else self._failed_radio_mj_bytes(error.bytes_sent)

    def _failed_radio_mj_bytes(self, sent: int) -> float:
        # A failed attempt still powered the radio to send; no answer came back to wait for.
        return 0.0 if self.link is None or sent == 0 else float(self.link.send_energy_mj(sent))

    def _answer(self, index: int, probs: np.ndarray, stage: int | None, compute_mj, ms: float):
        """An answer of local stage ``stage`` (0-based), or of the cloud for None."""
        label = int(probs.argmax())
        return Answer(
            index=int(index),
            label=label,
            class_name=self.run.input.class_names[label],
            confidence=float(probs[label]),
            stage="cloud" if stage is None else self._names[stage],
            degraded=False,
            energy_mj=float(compute_mj),
            compute_energy_mj=float(compute_mj),
            radio_energy_mj=0.0,
            energy_estimated=self.estimated,
            bytes_sent=0,
            latency_ms=ms,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self.cloud is not None:
            self.cloud.close()


_ZERO = np.zeros(1, dtype=np.int64)  # the row of a batch of one


def _replace(a: Answer, *, radio: float, sent: int, **changes) -> Answer:
    fields = a.to_dict()
    fields.update(changes, radio_energy_mj=radio, bytes_sent=int(sent))
    fields["energy_mj"] = fields["compute_energy_mj"] + radio
    fields["energy_estimated"] = fields["energy_estimated"] or radio > 0  # the link model
    return Answer(**fields)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1e3


def summarise(answers: list[Answer]) -> Summary:
    """Accuracy (when labels are known), energy per image, offload rate, exits."""
    n = len(answers)
    labelled = [a for a in answers if a.true_label is not None]
    exits: dict[str, int] = {}
    for a in answers:
        exits[a.stage] = exits.get(a.stage, 0) + 1
    # offloaded: the request left the device (answered by the cloud, or sent and failed);
    # an image the cloud was wanted for but never got (no cloud, unreachable) was not
    offloaded = sum(a.stage == "cloud" or a.bytes_sent > 0 for a in answers)
    return Summary(
        images=n,
        accuracy=(sum(a.label == a.true_label for a in labelled) / len(labelled))
        if labelled
        else None,
        energy_mj_per_image=sum(a.energy_mj for a in answers) / n if n else 0.0,
        energy_estimated=any(a.energy_estimated for a in answers),
        offload_rate=offloaded / n if n else 0.0,
        degraded=sum(a.degraded for a in answers),
        bytes_sent=sum(a.bytes_sent for a in answers),
        mean_latency_ms=sum(a.latency_ms for a in answers) / n if n else 0.0,
        exits=exits,
    )
