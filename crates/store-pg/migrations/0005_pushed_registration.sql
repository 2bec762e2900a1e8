-- Pushed client registration (draft-richer-oauth-pushed-client-registration-00): a client with the
-- static id `urn:ietf:oauth:parameters:dynamic` describes itself in its pushed authorization request.
-- The request keeps that self-asserted, normalised RFC 7591 metadata (JSON) until the person answers;
-- the grant keeps the client's unverified name for the audit log. NULL for every registered client.
ALTER TABLE authorization_requests ADD COLUMN client_registration TEXT;
ALTER TABLE grants ADD COLUMN unverified_client_name TEXT;
