"""Routing by the domain gate: which features a session labels with, decided on its first examples.

An encoder with a domain gate (``photos``) keeps its tuned features only when the examples, embedded
by the gate's base encoder, look like its tuning domain; otherwise the session switches to the base
encoder (plain ImageNet features: never worse than them on a domain it was not tuned on).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fewshot_gui.core.types import ImageRecord, Progress
from fewshot_gui.session.embedding import ImageEmbedder


@dataclass(frozen=True)
class Route:
    """The gate's decision for one set of examples."""

    base: str  # the gate's base encoder, used when the examples are out of its domain
    note: str  # why, in plain words (shown by the app and ``label``)
    in_domain: bool  # the examples look like the tuning domain: keep the tuned features


def gate_route(
    embedder: ImageEmbedder, records: Sequence[ImageRecord]
) -> Iterator[Progress | Route]:
    """Progress while the gate's base encoder embeds ``records``, then the :class:`Route`; nothing
    when ``embedder``'s encoder has no domain gate."""
    from fewshot_gui.encoders.domain_gate import DomainGate

    gate = DomainGate.from_dict(embedder.encoder_metadata.get("domain_gate"))
    if gate is None:
        return
    probe = embedder.with_encoder(gate.base)
    probe.should_stop = embedder.should_stop
    try:
        yield from probe.embed_into_table(records, "examples")
        support = probe._vectors([r.path for r in records if probe._embedded(r.path)])
    finally:
        probe.close()
    yield Route(gate.base, gate.reason(support, embedder.encoder_name), gate.in_domain(support))


class DomainRouting(ImageEmbedder):
    """The session's routing step (a part of :class:`~fewshot_gui.session.LabelingSession`)."""

    _routed: bool  # the gate decides once, on the first support set
    _prior_fits: bool  # the gate found the examples in its tuning domain
    _transductive_default: bool  # refinement was not chosen by the caller: the gate may turn it off
    transductive: bool
    encoder_note: str

    def _route(self, records: Sequence[ImageRecord]) -> Iterator[Progress]:
        """Once per session, before its first examples are embedded: follow the domain gate."""
        if self._routed or not records:
            return
        # decided only once the gate has answered: a job stopped while the probe embeds (the app
        # cancels a reopened project's cached pass when the user starts labeling) routes again
        for item in gate_route(self, records):
            if isinstance(item, Progress):
                yield item
                continue
            self.encoder_note = item.note
            self._prior_fits = item.in_domain
            if item.in_domain:
                continue
            self._warnings["encoder"] = item.note
            if self._transductive_default:
                # refinement on the folder was validated with the tuned features; on the base
                # features of an unseen domain (DTD) it made single corrections swing the folder
                # (review loop: largest fall 1.8-3.9 -> 4.1-5.7 points), so it is off there
                self.transductive = False
            self.switch_encoder(item.base)
        self._routed = True
