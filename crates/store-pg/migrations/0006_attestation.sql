-- Attestation-based client authentication (draft-ietf-oauth-attestation-based-client-auth).
--
-- A grant remembers the client attestation presented when its code was redeemed (JSON: the
-- attester's name, the attested agent-runtime facts and the client instance key's thumbprint), so
-- its refresh tokens keep carrying the facts and stay bound to that instance key.
ALTER TABLE grants ADD COLUMN attestation TEXT;

-- Challenges for attestation PoPs, stored only as SHA-256 digests, each usable once.
CREATE TABLE attestation_challenges (
    challenge_hash TEXT PRIMARY KEY NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX attestation_challenges_expires_at ON attestation_challenges (expires_at);
