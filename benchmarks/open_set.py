"""Open-set "unknown" detection (issue 15.2): known Flowers classes vs clutter.

Known: 5 of the 20 held-out Flowers-102 classes (``resources/flowers_heldout_classes.txt``), K
examples each; their other images are the known queries. Clutter: DTD textures and Omniglot
characters (far), images of the other held-out Flowers classes (near). Per episode and clutter
kind: AUROC of known vs clutter, the clutter caught at the threshold that keeps 95 % of known
images (set per episode on the known images: the oracle figure papers report), and with
``--unknown-threshold auto`` (set from the support set only): the known images kept and the
clutter caught. Scores compared: the calibrated unknown score (``adapters/open_set.py``), the
plain ``1 - max cosine``, and the softmax maximum of the metric adapter (what the CSV's confidence
gave before). The cost of ``auto`` on a folder without clutter: accuracy on known images (labels
that became ``unknown`` count as wrong) with and without it.

Embeddings come from the on-disk cache (``--cache-dir``), the encoder being ``photos`` (the
domain gate keeps its tuned features for flowers tasks). ``--fit-prior`` instead prints the
priors of :data:`fewshot_gui.adapters.open_set.PRIORS`, fitted on Flowers training classes.

    python benchmarks/open_set.py --cache-dir /tmp/h9cache --episodes 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fewshot_gui.adapters.open_set import (
    AUTO_THRESHOLD,
    UnknownScorer,
    auroc,
    fit_prior,
    prior_for,
    unit,
)
from fewshot_gui.adapters.registry import create_adapter
from fewshot_gui.data.episodes import ClassFolderDataset
from fewshot_gui.training.evaluate import EvalConfig, _embed_cached

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
THRESHOLDS = (AUTO_THRESHOLD, 0.99, 0.999)
HELDOUT = Path(__file__).resolve().parents[1] / "resources" / "flowers_heldout_classes.txt"


def heldout_classes() -> list[str]:
    return [line.strip() for line in HELDOUT.read_text().splitlines() if line.strip()]


def first_images(dataset: ClassFolderDataset, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Image ids (the first ``per_class`` of each class, sorted) and their class index."""
    ids = [np.sort(dataset.base_images[b])[:per_class] for b in dataset.base_ids]
    labels = np.concatenate([np.full(len(i), k) for k, i in enumerate(ids)])
    return np.concatenate(ids), labels


class Embedder:
    """One loaded encoder, embedding dataset images through the on-disk cache."""

    def __init__(self, encoder: str, cache_dir: str | None) -> None:
        from fewshot_gui.core.device import plan_device
        from fewshot_gui.encoders.registry import load_encoder

        self.plan = plan_device("cpu")
        self.loaded = load_encoder(encoder, self.plan)
        self.encoder, self.cache_dir = encoder, cache_dir

    def __call__(self, dataset: ClassFolderDataset, ids: np.ndarray) -> np.ndarray:
        from fewshot_gui.data.episodes import ImageStore

        store = ImageStore(dataset, self.loaded.spec.preprocessing, preload=False, num_workers=2)
        config = EvalConfig(data_dir=dataset.root, encoder=self.encoder, cache_dir=self.cache_dir)
        return _embed_cached(config, self.loaded, dataset, store, ids, self.plan)


def load(args: argparse.Namespace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Embeddings (and labels) of the known pool and of each clutter kind."""
    embed = Embedder(args.encoder, args.cache_dir)
    flowers = ClassFolderDataset(args.data / "flowers102", 1).subset(heldout_classes())
    ids, labels = first_images(flowers, args.per_class)
    out = {"flowers": (embed(flowers, ids), labels)}
    dtd = ClassFolderDataset(args.data / "dtd10", 1)
    out["dtd (far)"] = (embed(dtd, dtd.used_images), None)
    omniglot = ClassFolderDataset(args.data / "omniglot" / "images_background", 2)
    pick = np.random.default_rng(0).choice(len(omniglot.base_ids), 150, replace=False)
    oids = np.sort([omniglot.base_images[omniglot.base_ids[b]][0] for b in pick])
    out["omniglot (far)"] = (embed(omniglot, oids), None)
    return out


def episode_scores(
    x: np.ndarray,
    y: np.ndarray,
    clutter: dict[str, np.ndarray],
    shot: int,
    rng,
    encoder: str,
    relax: bool = False,
) -> dict[str, dict[str, float]]:
    """One episode: figures per clutter kind and score (see the module docstring)."""
    classes = rng.choice(np.unique(y), 5, replace=False)
    support, sy, queries, qy = [], [], [], []
    for k, c in enumerate(classes):
        ids = rng.permutation(np.flatnonzero(y == c))
        support += list(ids[:shot])
        sy += [k] * shot
        queries += list(ids[shot:])
        qy += [k] * (len(ids) - shot)
    near = rng.choice(np.flatnonzero(~np.isin(y, classes)), 150, replace=False)
    kinds = {**clutter, "flowers (near)": x[near]}
    sy_arr, qy_arr = np.asarray(sy), np.asarray(qy)
    scorer = UnknownScorer.fit(x[support], sy_arr, prior_for(encoder))
    adapter = create_adapter("metric").fit(x[support], [str(v) for v in sy])

    def scores(z: np.ndarray, folder: np.ndarray) -> dict[str, np.ndarray]:
        """Scores of ``z``; ``folder``: the whole folder being labeled (the unknown score is
        relaxed to it as a labeling session does; ``--support-only``: not)."""
        sims = unit(z) @ scorer.protos.T
        fitted = scorer.for_folder(unit(folder) @ scorer.protos.T) if relax else scorer
        return {
            "unknown score": fitted.scores(sims),
            "1 - max cosine": 1 - sims.max(1),
            "max softmax": -adapter.predict_proba(z).max(1),
        }

    known = scores(x[queries], x[queries])  # a folder without clutter
    predicted = (unit(x[queries]) @ scorer.protos.T).argmax(1)
    correct = predicted == qy_arr
    out: dict[str, dict[str, float]] = {"clean": {"accuracy": correct.mean()}}
    for t in THRESHOLDS:
        kept = known["unknown score"] <= t
        out["clean"][f"kept {t}"] = kept.mean()
        out["clean"][f"accuracy {t}"] = (correct & kept).mean()
    for kind, z in kinds.items():
        mixed = np.concatenate([x[queries], z])  # the known images and this clutter in one folder
        known_here, other = scores(x[queries], mixed), scores(z, mixed)
        for name, s in known_here.items():
            cut = np.quantile(s, 0.95)
            row = {"auroc": auroc(s, other[name]), "caught@95": (other[name] > cut).mean()}
            if name == "unknown score":
                for t in THRESHOLDS:
                    row[f"caught {t}"] = (other[name] > t).mean()
            out[f"{kind}|{name}"] = row
    return out


def fit_priors(args: argparse.Namespace) -> None:
    """Priors on the ``photos`` checkpoint's validation classes (Flowers training side, never the
    held-out classes), for ``photos`` and its base encoder."""
    from fewshot_gui.encoders.checkpoint import load_checkpoint

    meta = load_checkpoint(Path(__file__).resolve().parents[1] / "resources/checkpoints/photos.pt")
    view = ClassFolderDataset(args.data / "flowers102", 1).subset(meta["metadata"]["val_classes"])
    ids, labels = first_images(view, args.per_class)
    for encoder in ("photos", "efficientnet-lite0"):
        x = Embedder(encoder, args.cache_dir)(view, ids)
        print(encoder, fit_prior(x, labels, tasks=200), f"({len(np.unique(labels))} classes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--encoder", default="photos")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--per-class", type=int, default=32, help="known images per class")
    parser.add_argument("--fit-prior", action="store_true")
    parser.add_argument(
        "--support-only",
        action="store_true",
        help="the unknown score calibrated on the support set alone (not relaxed to the folder)",
    )
    args = parser.parse_args()
    if args.fit_prior:
        fit_priors(args)
        return
    data = load(args)
    x, y = data.pop("flowers")
    clutter = {
        k: v[0][np.random.default_rng(1).permutation(len(v[0]))[:150]] for k, v in data.items()
    }
    print(
        f"{args.encoder}: 5 known held-out Flowers classes, {args.per_class} images each; "
        f"150 clutter images per kind; {args.episodes} episodes"
    )
    for shot in (5, 1):
        rng = np.random.default_rng(shot)
        rows = [
            episode_scores(x, y, clutter, shot, rng, args.encoder, not args.support_only)
            for _ in range(args.episodes)
        ]
        thresholds = " | ".join(f"caught at {t}" for t in THRESHOLDS)
        print(f"\n{shot}-shot | AUROC | caught at 95 % known kept (oracle) | {thresholds}")
        for key in rows[0]:
            if key == "clean":
                continue
            mean = {m: np.mean([r[key][m] for r in rows]) for m in rows[0][key]}
            caught = "".join(
                f" | {mean[f'caught {t}']:.1%}" for t in THRESHOLDS if f"caught {t}" in mean
            )
            print(f"  {key:40s} | {mean['auroc']:.3f} | {mean['caught@95']:.1%}{caught}")
        clean = {m: np.mean([r["clean"][m] for r in rows]) for m in rows[0]["clean"]}
        for t in THRESHOLDS:
            print(
                f"  threshold {t}{' (auto)' if t == AUTO_THRESHOLD else ''}: keeps "
                f"{clean[f'kept {t}']:.1%} of known images; folder without clutter: accuracy "
                f"{clean['accuracy']:.1%} → {clean[f'accuracy {t}']:.1%}"
            )


if __name__ == "__main__":
    main()
