"""The classifier test of a fast simulation, as the CaloChallenge 2022 runs it (Krause et al., arXiv:2410.21611).

A network is trained to tell reference (0) from candidate (1) showers, as in
the challenge's ``code/evaluate.py`` (CaloChallenge/homepage):

- the network (:class:`ClassifierSpec`): a linear input layer and ``layers``
  more of ``width`` units, each followed by a LeakyReLU (and dropout), then
  one output logit; binary cross-entropy on the logit, Adam at ``lr``,
  batches of ``batch_size``, up to ``epochs`` epochs;
- each sample split 60/20/20 into train, validation and test; the epoch
  with the best validation accuracy is kept (training ends early at a
  validation accuracy of 1);
- the kept network's validation probabilities calibrate it (isotonic
  regression, clipped to [1e-6, 1 - 1e-6]); the AUC and the JSD,
  ``(log 2 - BCE) / log 2`` of the calibrated test probabilities, are
  measured on the test split.

The inputs (:func:`challenge_inputs`) are the challenge's too: ``log10
E_inc`` and the cells over ``E_inc`` (low level); ``log10 E_inc``, the
log layer energies, the per-layer centroids and widths, ``log10 E_total``
and the per-layer fraction of cells read out (high level; the
energies relative to ``E_inc``, see :func:`challenge_inputs`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from physnn.errors import ConfigError


@dataclass(frozen=True)
class ClassifierSpec:
    """The network and training of the classifier test (defaults: the challenge's ``--cls_*`` defaults).

    ``patience`` (not the challenge's: None trains all ``epochs``) ends the
    training after that many epochs without a better validation accuracy.
    """

    width: int = 2048
    layers: int = 2
    dropout: float = 0.0
    epochs: int = 50
    batch_size: int = 1000
    lr: float = 2e-4
    patience: int | None = None

    def describe(self) -> str:
        """``3 x 2048 LeakyReLU, dropout 0, Adam 0.0002, batch 1000, <= 50 epochs``."""
        stop = "" if self.patience is None else f", patience {self.patience}"
        return (f"{self.layers + 1} x {self.width} LeakyReLU, dropout {self.dropout:g}, Adam {self.lr:g}, "
                f"batch {self.batch_size}, <= {self.epochs} epochs{stop}")


#: The challenge's network and training.
CHALLENGE = ClassifierSpec()
#: What :func:`classifier_test` uses without a ``spec`` (the test suite makes it smaller still): the challenge's
#: recipe with a 256-wide network, batch 64, Adam 1e-3 and patience 10. The challenge trains on ~80k showers per
#: sample; on the 6k of a typical comparison its recipe is still improving at epoch 50 and understates a gap (a
#: 10% energy scale: AUC 0.89 / 0.86 on e-/gamma cells, against 0.98 / 0.97 with these settings), while both
#: give 0.48-0.54 for two simulator samples, and these train in minutes on a CPU where 3 x 2048 takes hours.
RECOMMENDED = ClassifierSpec(width=256, batch_size=64, lr=1e-3, patience=10)
DEFAULT = RECOMMENDED


def classifier_spec(options: ClassifierSpec | Mapping[str, Any] | None = None) -> ClassifierSpec:
    """:data:`DEFAULT` with ``options`` (e.g. ``{"width": 256}``) replaced; a spec is returned as it is."""
    if isinstance(options, ClassifierSpec):
        return options
    known = set(asdict(DEFAULT))
    unknown = sorted(set(options or {}) - known)
    if unknown:
        msg = f"classifier option {', '.join(unknown)}: expected {', '.join(sorted(known))}"
        raise ConfigError(msg)
    spec = replace(DEFAULT, **dict(options or {}))
    bad = [f"{name}={getattr(spec, name)!r} (expected {rule})" for name, rule, ok in (
        ("width", "an integer >= 1", isinstance(spec.width, int) and spec.width >= 1),
        ("layers", "an integer >= 0", isinstance(spec.layers, int) and spec.layers >= 0),
        ("epochs", "an integer >= 1", isinstance(spec.epochs, int) and spec.epochs >= 1),
        ("batch_size", "an integer >= 1", isinstance(spec.batch_size, int) and spec.batch_size >= 1),
        ("lr", "a number > 0", spec.lr > 0),
        ("dropout", "a number in [0, 1)", 0 <= spec.dropout < 1),
        ("patience", "None or an integer >= 1", spec.patience is None or spec.patience >= 1)) if not ok]
    if bad:
        msg = f"classifier option {bad[0]}"
        raise ConfigError(msg)
    return spec


def classifier_test(reference: np.ndarray, candidate: np.ndarray, *, seed: int = 0,
                    spec: ClassifierSpec | Mapping[str, Any] | None = None, n_boot: int = 200,
                    device: str = "cpu") -> dict[str, Any]:
    """Train a network to tell candidate (1) from reference (0) events; its calibrated AUC and JSD on a held-out split.

    Parameters
    ----------
    reference, candidate
        ``(N, features)`` inputs of each sample (NaNs are set to 0), e.g. from :func:`challenge_inputs`;
        ``min(N_ref, N_cand)`` events of each are used.
    seed
        Seeds the split, the weights, the batches and the bootstrap.
    spec
        The network and training (:class:`ClassifierSpec`, or options replaced in :data:`DEFAULT`).
    n_boot
        Bootstrap resamples of the test split for the 68 % intervals.
    device
        Where torch trains the network (``cpu``, ``cuda``, ``auto``).

    Returns
    -------
    dict
        ``auc`` (calibrated; 0.5: indistinguishable) with its bootstrap 68 % interval
        (``auc_low``, ``auc_high``), ``jsd`` (0: indistinguishable, 1: disjoint, clipped below at 0) with
        ``jsd_low``/``jsd_high``, ``auc_uncalibrated``, ``best_epoch`` and ``epochs`` trained, ``events``
        (train/val/test per sample), ``inputs``, ``network``, ``device``.
    """
    from physnn.evaluation.metrics import roc_with_band

    spec = classifier_spec(spec)
    n = min(len(reference), len(candidate))
    if n < 10:
        msg = f"the classifier test needs at least 10 events of each sample, got {len(reference)} and {len(candidate)}"
        raise ConfigError(msg)
    x, y = _split(reference, candidate, n, np.random.default_rng(seed))
    dev = _device(device)
    net, best, trained = _fit(x, y, spec, seed, dev)
    val, test = _predict(net, x["val"], dev), _predict(net, x["test"], dev)
    calibrated = _calibrate(val, y["val"], test)
    roc = roc_with_band(y["test"], calibrated, n_boot=n_boot, seed=seed)
    jsd = _jsd(calibrated, y["test"], n_boot, seed)
    return {"auc": roc["auc"], "auc_low": roc.get("auc_low"), "auc_high": roc.get("auc_high"), **jsd,
            "auc_uncalibrated": roc_with_band(y["test"], test, n_boot=0)["auc"], "best_epoch": best,
            "epochs": trained, "events": {name: len(part) // 2 for name, part in y.items()},
            "inputs": int(x["train"].shape[1]), "network": spec.describe(), "device": str(dev)}


def _device(device: str) -> Any:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def _split(reference: np.ndarray, candidate: np.ndarray, n: int, rng: np.random.Generator
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``n`` events of each sample, 60/20/20 into train, val and test (inputs float32, NaN -> 0; labels)."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label, sample in ((0, reference), (1, candidate)):
        idx = rng.permutation(len(sample))[:n]
        for name, part in zip(parts, np.split(idx, [int(0.6 * n), int(0.8 * n)]), strict=True):
            parts[name].append(np.nan_to_num(np.asarray(sample[part], dtype=np.float32), posinf=0.0, neginf=0.0))
            labels[name].append(np.full(len(part), label, dtype=np.float32))
    return ({k: np.concatenate(v) for k, v in parts.items()}, {k: np.concatenate(v) for k, v in labels.items()})


def _network(inputs: int, spec: ClassifierSpec) -> Any:
    """The challenge's ``DNN``: Linear(inputs, width) and ``layers`` x Linear(width, width), each + LeakyReLU
    + Dropout, then Linear(width, 1) (a logit)."""
    import torch

    blocks: list[Any] = []
    for width_in in (inputs, *([spec.width] * spec.layers)):
        blocks += [torch.nn.Linear(width_in, spec.width), torch.nn.LeakyReLU(), torch.nn.Dropout(spec.dropout)]
    return torch.nn.Sequential(*blocks, torch.nn.Linear(spec.width, 1))


def _fit(x: dict[str, np.ndarray], y: dict[str, np.ndarray], spec: ClassifierSpec, seed: int,
         dev: Any) -> tuple[Any, int, int]:
    """The network trained epoch by epoch, the epoch of best validation accuracy kept: (net, that epoch, epochs)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _network(x["train"].shape[1], spec).to(dev)
    shuffle = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x["train"]).to(dev), torch.from_numpy(y["train"]).to(dev)
    optim = torch.optim.Adam(net.parameters(), lr=spec.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best_acc, best_epoch, best_state, trained = -math.inf, 0, None, 0
    for epoch in range(1, spec.epochs + 1):
        net.train()
        order = torch.randperm(len(xt), generator=shuffle).to(dev)
        for lo in range(0, len(order), spec.batch_size):
            batch = order[lo:lo + spec.batch_size]
            loss = loss_fn(net(xt[batch]).squeeze(1), yt[batch])
            optim.zero_grad()
            loss.backward()
            optim.step()
        trained = epoch
        acc = float(np.mean((_predict(net, x["val"], dev) > 0.5) == (y["val"] > 0.5)))
        if acc > best_acc:
            best_acc, best_epoch, best_state = acc, epoch, copy.deepcopy(net.state_dict())
        if acc == 1.0 or (spec.patience is not None and epoch - best_epoch >= spec.patience):
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net, best_epoch, trained


def _predict(net: Any, x: np.ndarray, dev: Any, batch: int = 10_000) -> np.ndarray:
    """The network's probabilities (sigmoid of the logit) of ``x``, in evaluation mode."""
    import torch

    net.eval()
    with torch.no_grad():
        out = [torch.sigmoid(net(torch.from_numpy(x[lo:lo + batch]).to(dev))).squeeze(1).cpu().numpy()
               for lo in range(0, len(x), batch)]
    return np.concatenate(out).astype(np.float64)


def _calibrate(val: np.ndarray, y_val: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The test probabilities mapped by an isotonic regression fitted on the validation ones (as the challenge)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1.0 - 1e-6).fit(val, y_val)
    return np.asarray(iso.predict(test), dtype=np.float64)


def _jsd(prob: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    """``(log 2 - BCE) / log 2`` of calibrated probabilities, clipped to [0, 1], with a bootstrap 68 % interval."""
    def jsd(p: np.ndarray, t: np.ndarray) -> float:
        bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        return float(np.clip((math.log(2.0) - bce) / math.log(2.0), 0.0, 1.0))

    out = {"jsd": jsd(prob, y)}
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        boots = [jsd(prob[i], y[i]) for i in (rng.integers(0, len(y), len(y)) for _ in range(n_boot))]
        lo, hi = np.percentile(boots, [16, 84])
        out.update(jsd_low=float(lo), jsd_high=float(hi))
    return out


# -- the challenge's inputs -----------------------------------------------------
def challenge_inputs(kind: str, features: Mapping[str, np.ndarray], cells: np.ndarray,
                     incident: np.ndarray | None, grid: tuple[int, int] | None = None) -> np.ndarray:
    """The classifier's inputs per event, as the challenge's ``prepare_{low,high}_data_for_classifier``.

    Parameters
    ----------
    kind
        ``low``: ``log10 E_inc`` and every cell over ``E_inc`` (without an incident energy: the cells over
        the event's sum); ``high``: ``log10 E_inc``, ``log10(E_layer / E_inc + 1e-8)`` per layer (a layer
        summing to less than 0, noise only, counts as 0), the energy-weighted centroid (from the grid's
        centre) and width in x and y per layer (in cells, of order 1 as the challenge's mm / 100; 0 for an
        empty layer),
        ``log10(E_total / E_inc + 1e-8)`` and the fraction of cells read out per layer (the challenge's
        sparsity is one minus it). The challenge takes ``log10 E_layer`` and ``log10 E_total`` in MeV: with
        ``log10 E_inc`` beside them that is the same information, but a network needs many more steps to
        find a wrong response, a difference of two inputs (a 10 % too high response: AUC 0.53 from the
        challenge's, 0.70 from these, with 900 showers of each sample to train on).
    features
        :func:`physnn.physics.showers.high_level_features` of the events.
    cells
        ``(N, cells)`` cell energies of the first ``N`` events (``low`` only).
    incident
        ``(events,)`` incident energies, or None.
    grid
        ``(H, W)`` of a layer, to measure the centroids from its centre (None: from cell 0).
    """
    if kind == "low":
        cells = np.asarray(cells, dtype=np.float64)
        if incident is None:
            return cells / np.maximum(cells.sum(1, keepdims=True), 1e-12)
        e_inc = np.asarray(incident, dtype=np.float64)[: len(cells), None]
        return np.concatenate([np.log10(e_inc), cells / e_inc], axis=1)
    if kind != "high":
        msg = f"classifier inputs {kind!r}: expected low or high"
        raise ConfigError(msg)
    layers = sorted(int(k[len("e_layer"):]) for k in features if k.startswith("e_layer"))
    scale = np.ones(1) if incident is None else np.asarray(incident, dtype=np.float64)
    log = lambda e: np.log10(np.maximum(np.asarray(e, dtype=np.float64) / scale, 0.0) + 1e-8)  # noqa: E731
    total = features["e_total"] if "e_total" in features else features["e_ratio"] * scale
    columns = [] if incident is None else [np.log10(scale)]
    columns += [log(features[f"e_layer{la}"]) for la in layers]
    h, w = grid if grid is not None else (1, 1)
    centre = {"centroid_x": (w - 1) / 2, "centroid_y": (h - 1) / 2, "width_x": 0.0, "width_y": 0.0}
    for key, origin in centre.items():
        columns += [features[f"{key}{la}"] - origin for la in layers]
    columns += [log(total)] + [features[f"sparsity{la}"] for la in layers]
    return np.nan_to_num(np.stack(columns, axis=1))


# -- per particle type ------------------------------------------------------------
def judge_samples(kind: str, reference: Any, candidate: Any, *, max_events: int, seed: int = 0,
                  spec: ClassifierSpec | Mapping[str, Any] | None = None, device: str = "cpu") -> dict[str, Any]:
    """:func:`classifier_test` of two :class:`~physnn.evaluation.samples.ShowerSample` on ``kind`` inputs, all types
    together and, where both carry a particle type (``pdgid`` or ``label``) and share two or more, per type.

    The first ``max_events`` showers of each sample are judged; each type's test uses that type's showers among
    them (a type with fewer than 10 in either sample is left out). ``per_type`` maps each type's name (``e-``,
    ``gamma``, ``pi+``) to its test's result.
    """
    from physnn.evaluation.conditions import particle_name

    grid = tuple(reference.shape[-2:]) if len(reference.shape) >= 2 else None
    x_ref, x_cand = (challenge_inputs(kind, s.features, s.cells, s.incident, grid)[:max_events]  # type: ignore[arg-type]
                     for s in (reference, candidate))
    result = classifier_test(x_ref, x_cand, seed=seed, spec=spec, device=device)
    types = particle_types(reference, len(x_ref)), particle_types(candidate, len(x_cand))
    if types[0] is None or types[1] is None or types[0][0] != types[1][0]:
        return result
    (branch, t_ref), (_, t_cand) = types
    shared = sorted(set(np.unique(t_ref).tolist()) & set(np.unique(t_cand).tolist()))
    if len(shared) < 2:
        return result
    per_type = {}
    for value in shared:
        a, b = x_ref[t_ref == value], x_cand[t_cand == value]
        if min(len(a), len(b)) >= 10:
            per_type[particle_name(branch, value)] = classifier_test(a, b, seed=seed, spec=spec, device=device)
    return result | {"per_type": per_type}


def particle_types(sample: Any, n: int) -> tuple[str, np.ndarray] | None:
    """(branch, type of each of the first ``n`` showers judged) of a sample, or None when it has no type."""
    types = sample.particle_types()
    if types is None:
        return None
    branch, values = types
    return branch, np.rint(values[:n]).astype(np.int64)
