"""``storage.writes._diff``'s side-by-side walk (items kept in place, new ones at the end)
gives exactly what the map of the old items by key gives, on random edits of random lists."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from storage.writes import _diff, _in_place


@dataclass
class Item:
    key: str
    status: str


def by_key(before: tuple[Any, ...], after: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
    """The general way: new items (with their position) and those whose status changed."""
    old = {item.key: item for item in before}
    new, changed = [], []
    for pos, item in enumerate(after):
        prior = old.get(item.key)
        if prior is None:
            new.append((pos, item))
        elif prior is not item and prior.status != item.status:
            changed.append(item)
    return new, changed


def edited(rnd: random.Random, before: tuple[Item, ...]) -> tuple[Item, ...]:
    after = list(before)
    for _ in range(rnd.randint(0, 3)):
        r = rnd.random()
        if r < 0.3 and after:
            i = rnd.randrange(len(after))
            after[i] = Item(after[i].key, rnd.choice("pfc"))
        elif r < 0.6:
            after.append(Item(rnd.choice("abcdefghijk"), rnd.choice("pfc")))
        elif r < 0.8 and after:
            after.pop(rnd.randrange(len(after)))
        else:
            rnd.shuffle(after)
    return tuple({item.key: item for item in after}.values())  # keys are unique per episode


def test_the_side_by_side_walk_finds_what_the_map_by_key_finds() -> None:
    rnd = random.Random(13)
    walked = 0
    for _ in range(5000):
        keys = rnd.sample("abcdefgh", rnd.randint(0, 6))
        before = tuple(Item(k, rnd.choice("pfc")) for k in keys)
        after = edited(rnd, before)
        walked += _in_place(before, after) is not None
        assert _diff(before, after) == by_key(before, after), (before, after)
    assert 1000 < walked < 5000  # both ways were taken


def test_a_fired_timer_and_a_new_one_at_the_end() -> None:
    before = (Item("a", "pending"), Item("b", "pending"))
    after = (before[0], Item("b", "fired"), Item("c", "pending"))
    assert _in_place(before, after) == ([(2, after[2])], [after[1]])
    moved = (after[1], before[0])  # reordered: the general way
    assert _in_place(before, moved) is None
    assert _diff(before, moved) == ([], [after[1]])
