"""The live source families, in build order: what ``app.build_sources`` walks (each family builds
its sources from its ``[sources.<table>]``) and what ``backfill --source`` lists."""
from __future__ import annotations

from watchdog.sources import fiscaldata, fred, nyfed, speeches
from watchdog.sources.base import Family

FAMILIES: tuple[Family, ...] = (nyfed.FAMILY, fred.FAMILY, fiscaldata.FAMILY, speeches.FAMILY)

# Every source name a config can enable, in build order.
SOURCE_NAMES: tuple[str, ...] = tuple(name for family in FAMILIES for name in family.sources)
