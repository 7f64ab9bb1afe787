"""Roles as the pattern fixes them: the peer with the greater user id is polite."""

from __future__ import annotations

import itertools

_counter = itertools.count(1)


def is_polite(user_id: int, other_user_id: int) -> bool:
    """The pattern's rule, the one each peer applies to itself."""
    if user_id == other_user_id:
        raise ValueError("two peers with the same user id have no roles")
    return user_id > other_user_id


def pick_user_ids(seed: int | None = None) -> tuple[int, int]:
    """(polite id, impolite id): distinct ids per case, so no room ever reuses a pair."""
    n = next(_counter) if seed is None else seed
    polite, impolite = 2000 + 2 * n, 1000 + 2 * n
    assert is_polite(polite, impolite) and not is_polite(impolite, polite)
    return polite, impolite
