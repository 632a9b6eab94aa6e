"""The two directions of the boundary (Django-free): the one definition every module imports.

``boundary.models.Direction`` is the Django ``TextChoices`` built on these values.
"""

from __future__ import annotations

DECOMPOSITION = "decomposition"
RECOMPOSITION = "recomposition"
DIRECTIONS: tuple[str, str] = (DECOMPOSITION, RECOMPOSITION)
