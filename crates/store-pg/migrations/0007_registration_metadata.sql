-- RFC 7592 reads return what the client registered, and updates replace it: the normalised
-- metadata is kept as JSON text. A registration whose software statement (RFC 7591 §2.3) was
-- signed by a configured publisher records that publisher's name: its client_name is verified.

ALTER TABLE client_registrations ADD COLUMN metadata TEXT;
ALTER TABLE client_registrations ADD COLUMN software_publisher TEXT;
