"""Chapter 6's exercise (``book/06_adversarial_training.md``): an adversarial pool's refresh
with a staleness rule.

The paper replaces "a random subset" of its pool. The exercise asks for a rule instead: an
entry is *stale* when the current network no longer gets it wrong (it teaches little now).
A refresh of n entries replaces the stale ones first, the oldest first among them (smallest
``made_at``; equal ages: the lower slot first), then, if fewer than n are stale, the oldest of
the others; the i-th attacked image goes into the i-th entry chosen. Each new entry holds the
adversarial image, the image's true label (what the network should answer there) and the step
it was made at.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .bank import Exercise
from .checking import Mistake

Attack = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def stale_first(made_at: torch.Tensor, fooled: torch.Tensor, count: int, *, fooled_first: bool = False) -> torch.Tensor:
    """The ``count`` entries a staleness-rule refresh replaces, in order [count] (long).

    made_at [P] (int, the step each entry was made at), fooled [P] (bool, the current network
    still misclassifies the entry). Order: entries with fooled False first, then by made_at
    ascending, then by slot. ``fooled_first`` reverses the first key (a mistake, for the check).
    """
    if made_at.shape != fooled.shape or made_at.ndim != 1:
        raise ValueError(f"made_at and fooled must be 1-D of the same shape, got {made_at.shape}, {fooled.shape}")
    if not 0 <= count <= len(made_at):
        raise ValueError(f"count must be in 0..{len(made_at)}, got {count!r}")
    by_age = torch.sort(made_at, stable=True).indices  # oldest first, ties: lower slot
    first = fooled[by_age] if not fooled_first else ~fooled[by_age]
    order = by_age[torch.sort(first.long(), stable=True).indices]
    return order[:count]


def _replace(
    pool: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    slots: torch.Tensor,
    new: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Copies of the pool's (x, y, made_at) with ``new``'s rows written at ``slots``."""
    out = tuple(part.clone() for part in pool)
    for part, values in zip(out, new):
        part[slots] = values.to(part.dtype)
    return out  # type: ignore[return-value]


def refresh_stale(
    pool_x: torch.Tensor,
    pool_y: torch.Tensor,
    made_at: torch.Tensor,
    fooled: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    step: int,
    attack: Attack,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pool after a staleness-rule refresh of n = len(images) entries, as new tensors.

    pool_x [P, ...], pool_y [P], made_at [P], fooled [P] bool; images [n, ...], labels [n] (true
    labels); ``attack(images, labels)`` returns (x_adv [n, ...], targets [n]). Returns (new_x,
    new_y, new_made_at): the entries ``stale_first`` picks hold x_adv, the true labels and ``step``.
    """
    slots = stale_first(made_at, fooled, len(images))
    x_adv, _ = attack(images, labels)
    return _replace((pool_x, pool_y, made_at), slots, (x_adv, labels, torch.full_like(labels, step)))


def _targets(pool_x, pool_y, made_at, fooled, images, labels, step, attack):
    """Stores the attack's target labels."""
    slots = stale_first(made_at, fooled, len(images))
    x_adv, targets = attack(images, labels)
    return _replace((pool_x, pool_y, made_at), slots, (x_adv, targets, torch.full_like(labels, step)))


def _not_aged(pool_x, pool_y, made_at, fooled, images, labels, step, attack):
    """Leaves made_at as it was."""
    slots = stale_first(made_at, fooled, len(images))
    x_adv, _ = attack(images, labels)
    return _replace((pool_x, pool_y, made_at), slots, (x_adv, labels, made_at[slots]))


def _newest_first(pool_x, pool_y, made_at, fooled, images, labels, step, attack):
    """Stale first, but the newest of them first."""
    slots = stale_first(-made_at, fooled, len(images))
    x_adv, _ = attack(images, labels)
    return _replace((pool_x, pool_y, made_at), slots, (x_adv, labels, torch.full_like(labels, step)))


def _age_only(pool_x, pool_y, made_at, fooled, images, labels, step, attack):
    """The oldest entries, whether stale or not."""
    slots = stale_first(made_at, torch.zeros_like(fooled), len(images))
    x_adv, _ = attack(images, labels)
    return _replace((pool_x, pool_y, made_at), slots, (x_adv, labels, torch.full_like(labels, step)))


def _fooled_first(pool_x, pool_y, made_at, fooled, images, labels, step, attack):
    """The entries that still fool the network first."""
    slots = stale_first(made_at, fooled, len(images), fooled_first=True)
    x_adv, _ = attack(images, labels)
    return _replace((pool_x, pool_y, made_at), slots, (x_adv, labels, torch.full_like(labels, step)))


def stand_in_attack(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A cheap stand-in for the attack in checks: (1 − images, (labels + 1) mod 10)."""
    return 1 - images, (labels + 1) % 10


def refresh_cases(generator: torch.Generator | None = None) -> list[tuple]:
    """Three small pools (P = 8 or 6 entries of 1 × 4 × 4 'images') that tell the rule's
    mistakes apart: ties of age, stale entries fewer and more than the refresh.

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    specs = [  # made_at, fooled, n, step
        ([0, 0, 3, 3, 5, 5, 5, 7], [1, 0, 1, 0, 0, 1, 0, 1], 3, 9),
        ([2, 1, 1, 0, 4, 4], [1, 1, 0, 1, 1, 1], 3, 6),
        ([6, 2, 2, 4, 0, 8, 1, 3], [0, 0, 1, 0, 1, 0, 1, 0], 2, 10),
    ]
    cases = []
    for made_at, fooled, n, step in specs:
        size = len(made_at)
        pool_x = torch.rand(size, 1, 4, 4, generator=generator)
        pool_y = torch.randint(0, 10, (size,), generator=generator)
        images = torch.rand(n, 1, 4, 4, generator=generator)
        labels = torch.randint(0, 10, (n,), generator=generator)
        flags = torch.tensor(fooled, dtype=torch.bool)
        cases.append((pool_x, pool_y, torch.tensor(made_at), flags, images, labels, step, stand_in_attack))
    return cases


EXERCISES = (
    Exercise(
        id="refresh_stale",
        chapter="06_adversarial_training",
        title="The pool's refresh with a staleness rule",
        reference=refresh_stale,
        mistakes=(
            Mistake(
                "you stored the labels the attack aimed at. The pool teaches the network what to "
                "answer at x + r: the image's true label (`labels`), not the wrong label it was "
                "pushed towards.",
                _targets,
            ),
            Mistake(
                "you left made_at unchanged for the new entries. They were made now, at `step`; "
                "with their old ages they would look stale and be replaced again next time.",
                _not_aged,
            ),
            Mistake(
                "you replaced the newest stale entries first; the stalest are the oldest "
                "(smallest made_at), so sort by made_at ascending.",
                _newest_first,
            ),
            Mistake(
                "you chose by age alone. An entry the network already gets right (fooled False) "
                "is stale whatever its age, and goes before every entry that still fools it.",
                _age_only,
            ),
            Mistake(
                "you replaced the entries that still fool the network first. Those are the pool's "
                "most useful ones; the stale ones are those it now gets right (fooled False).",
                _fooled_first,
            ),
        ),
        sample_cases=refresh_cases,
        points=3,
        hint="choose the n entries first, in the rule's order; then write into copies of the "
        "three tensors, never into the arguments.",
    ),
)
