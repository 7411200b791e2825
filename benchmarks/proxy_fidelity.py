"""Does the search's proxy training rank networks the way full training does?

`acnn design` ranks candidates after a cheap proxy training (``--proxy-subset`` images,
``--proxy-epochs``) and trains only its shortlist fully. This benchmark measures how
well a proxy predicts the final ranking: it takes the networks of one family and dataset
that the training cache already holds at the final fidelity (the full training split,
``--final-epochs``; every `acnn design` and design_quality run leaves them there), trains
each at every ``--fidelity SUBSETxEPOCHS`` asked (from the cache when it was before,
same seed and threads), and reports per fidelity the Spearman and Kendall rank
correlations of proxy with final validation accuracy, the overlap of the top ``--top``
networks, and the median seconds of one proxy training.

    python benchmarks/proxy_fidelity.py [--fidelity 4000x1 16000x1] [--max-networks 40]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from scipy import stats

from adaptive_cnn.data import load_dataset
from adaptive_cnn.design import DesignConfig
from adaptive_cnn.design.settings import add_arguments, declared, values_from_args
from adaptive_cnn.training import TrainConfig, TrainingCache, default_cache_dir, train

RESULTS = Path(__file__).resolve().parent / "results"


def fidelity(text: str) -> tuple[int | None, float]:
    """``4000x1`` -> (4000, 1.0); ``allx3`` -> (None, 3.0)."""
    subset, sep, epochs = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        n = None if subset == "all" else int(subset)
        e = float(epochs)
        if (n is not None and n < 1) or e <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"fidelity {text!r}: want SUBSETxEPOCHS, e.g. 4000x1 or allx0.5"
        ) from None
    return n, e


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="conv", help="network family (default: conv)")
    p.add_argument(
        "--fidelity",
        type=fidelity,
        nargs="+",
        default=[(4000, 1.0)],
        metavar="SUBSETxEPOCHS",
        help="proxy trainings to compare with the final one (default 4000x1)",
    )
    add_arguments(p, DesignConfig, only=("dataset", "final_epochs"))  # the design's own
    p.add_argument("--threads", type=int, default=1, help="torch threads (cache key; default 1)")
    p.add_argument("--max-networks", type=int, default=40, help="most networks compared")
    p.add_argument("--top", type=int, default=5, help="top-k overlap reported (default 5)")
    p.add_argument("--cache-dir", type=Path, help="training cache (default: acnn's)")
    p.add_argument("--out", type=Path, default=RESULTS / "proxy_fidelity.json")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    names = ("dataset", "final_epochs")
    defaults = {d.name: d.default for d in declared(DesignConfig) if d.name in names}
    for name, value in {**defaults, **values_from_args(args, DesignConfig, names)}.items():
        setattr(args, name, value)
    return args


def final_networks(cache_root: Path, args, fingerprint: str) -> list[tuple[str, int, float]]:
    """(arch, seed, final val accuracy) of the cached final-fidelity trainings, by arch."""
    found: dict[tuple[str, int], float] = {}
    for meta in TrainingCache(cache_root).entries():
        config = meta.get("config") or {}
        if (
            meta.get("family") == args.family
            and meta.get("dataset_fingerprint") == fingerprint
            and meta.get("threads") == args.threads
            and config.get("subset") is None
            and config.get("epochs") == args.final_epochs
        ):
            found[(f"{meta['family']}:{meta['arch']}", int(meta["seed"]))] = meta["val_accuracy"]
    rows = sorted((arch, seed, acc) for (arch, seed), acc in found.items())
    return rows[: args.max_networks]


def compare(final: list[float], proxy: list[float], top: int) -> dict[str, Any]:
    """Rank agreement of ``proxy`` with ``final`` (same networks, same order)."""
    rho = stats.spearmanr(proxy, final).statistic
    tau = stats.kendalltau(proxy, final).statistic
    k = min(top, len(final))
    best_final = set(sorted(range(len(final)), key=lambda i: -final[i])[:k])
    best_proxy = set(sorted(range(len(proxy)), key=lambda i: -proxy[i])[:k])
    return {  # None where a ranking is constant (every network equally accurate)
        "spearman": None if math.isnan(rho) else float(rho),
        "kendall": None if math.isnan(tau) else float(tau),
        "top_k": k,
        "top_k_overlap": len(best_final & best_proxy),
        # does the proxy's favourite end up among the best k at full training?
        "proxy_best_in_final_top_k": max(range(len(proxy)), key=lambda i: proxy[i]) in best_final,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    cache_root = args.cache_dir or default_cache_dir()
    cache = TrainingCache(cache_root)
    dataset = load_dataset(args.dataset)
    networks = final_networks(cache_root, args, dataset.fingerprint)
    if len(networks) < 3:
        print(
            f"proxy_fidelity: error: the cache at {cache_root} holds {len(networks)} "
            f"{args.family} networks of {args.dataset} trained for {args.final_epochs:g} epochs "
            f"on the full split with {args.threads} thread(s); at least 3 are needed (run "
            "acnn design or benchmarks/design_quality.py first)",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    final = [acc for _, _, acc in networks]
    results = []
    for subset, epochs in args.fidelity:
        name = f"{subset or 'all'}x{epochs:g}"
        accs, seconds, hits = [], [], 0
        for i, (arch, seed, _) in enumerate(networks, start=1):
            config = TrainConfig(epochs=epochs, subset=subset)
            r = train(arch, dataset, config, seed, threads=args.threads, cache=cache)
            accs.append(r.val_accuracy)
            seconds.append(r.train_seconds)
            hits += bool(r.cache_hit)
            say(f"{name}: {i}/{len(networks)} {arch} proxy {r.val_accuracy:.4f}")
        results.append(
            {
                "fidelity": name,
                "subset": subset,
                "epochs": epochs,
                "networks": len(networks),
                "median_train_seconds": statistics.median(seconds),
                "cache_hits": hits,
                "proxy_val_accuracy": accs,
                **compare(final, accs, args.top),
            }
        )
    report = {
        "benchmark": "proxy_fidelity",
        "dataset": args.dataset,
        "family": args.family,
        "final": {"subset": None, "epochs": args.final_epochs, "val_accuracy": final},
        "networks": [{"arch": a, "seed": s} for a, s, _ in networks],
        "fidelities": results,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"{len(networks)} {args.family} networks of {args.dataset}; final = full split, "
        f"{args.final_epochs:g} epochs (validation accuracy)"
    )
    print("proxy          spearman  kendall  top-k overlap  proxy's best in top-k  s/training")
    for r in results:
        rho, tau = (_num(r[k]) for k in ("spearman", "kendall"))
        print(
            f"{r['fidelity']:<13} {rho:>9} {tau:>8}  "
            f"{r['top_k_overlap']:>6}/{r['top_k']:<6}  {str(r['proxy_best_in_final_top_k']):>21}"
            f"  {r['median_train_seconds']:>10.1f}"
        )
    print(f"wrote {args.out}")
    return 0


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
