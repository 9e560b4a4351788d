"""The live source families, in build order: what ``app.build_sources`` walks (each family builds
its sources from its ``[sources.<table>]``) and what ``backfill --source`` lists."""
from __future__ import annotations

from watchdog.sources import fiscaldata, fred, nyfed, ofr, speeches
from watchdog.sources.base import Family

FAMILIES: tuple[Family, ...] = (nyfed.FAMILY, fred.FAMILY, fiscaldata.FAMILY, speeches.FAMILY,
                               ofr.FAMILY)

# Every source name a config can enable, in build order.
SOURCE_NAMES: tuple[str, ...] = tuple(name for family in FAMILIES for name in family.sources)

# The live source that fetches each series when its family has several (``watchdog status``
# names it for a series the log lacks; ``backfill --source`` takes it); else the family's name.
BACKFILL_SOURCES: dict[str, str] = {
    "srf": "nyfed-operations", "onrrp": "nyfed-operations",
    "speeches": "speeches",      # and speeches-new-york, speeches-dallas for Reserve Banks
}
