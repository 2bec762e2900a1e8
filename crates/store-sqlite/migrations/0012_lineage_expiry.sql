-- Nothing to add on SQLite: `[audit] retention` finds expired lineage rows in rowid (insertion)
-- order. This file keeps the migration numbers of both backends alike.
SELECT 1;
