-- `[audit] retention` deletes the lineage rows of tokens expired long ago. Rows arrive in nearly
-- increasing expiry, so a BRIN index finds them at almost no cost per insert (a B-tree would add
-- a write to every issuance).
CREATE INDEX token_lineage_expires_at ON token_lineage USING BRIN (expires_at);
