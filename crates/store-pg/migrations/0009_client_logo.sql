-- RFC 7591 `logo_uri`: shown on the consent page (fetched through the SSRF-safe fetcher, images only).

ALTER TABLE clients ADD COLUMN logo_uri TEXT;
