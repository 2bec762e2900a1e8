//! Audit events: every issuance, refusal and revocation, with the `jti` and its parent so that a
//! chain of agents can be followed from the person to the last call.

use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    TokenIssued,
    TokenRefused,
    TokenRevoked,
    /// A person allowed a client: a grant was created (its id in `jti`).
    ConsentGranted,
    ConsentDenied,
    /// A grant and every token from it revoked: code or refresh-token reuse, or consent withdrawn.
    GrantRevoked,
    SignedIn,
    SignInFailed,
    /// A client registered itself (RFC 7591), or deleted or updated its registration (RFC 7592).
    ClientRegistered,
    ClientDeleted,
    ClientUpdated,
}

impl AuditKind {
    pub const ALL: &'static [AuditKind] = &[
        Self::TokenIssued,
        Self::TokenRefused,
        Self::TokenRevoked,
        Self::ConsentGranted,
        Self::ConsentDenied,
        Self::GrantRevoked,
        Self::SignedIn,
        Self::SignInFailed,
        Self::ClientRegistered,
        Self::ClientDeleted,
        Self::ClientUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenIssued => "token_issued",
            Self::TokenRefused => "token_refused",
            Self::TokenRevoked => "token_revoked",
            Self::ConsentGranted => "consent_granted",
            Self::ConsentDenied => "consent_denied",
            Self::GrantRevoked => "grant_revoked",
            Self::SignedIn => "signed_in",
            Self::SignInFailed => "sign_in_failed",
            Self::ClientRegistered => "client_registered",
            Self::ClientDeleted => "client_deleted",
            Self::ClientUpdated => "client_updated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// One row of the audit log. `outcome` is `"ok"` or the OAuth error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: UnixTime,
    pub kind: AuditKind,
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub outcome: String,
    pub jti: Option<String>,
    pub parent_jti: Option<String>,
    /// Client-safe description of a refusal; never a secret or a token.
    pub detail: Option<String>,
}

/// Longest text an audit field keeps, in characters.
pub const MAX_AUDIT_TEXT: usize = 512;

/// Audit text as stored: control characters (NUL, newlines, escapes) replaced by U+FFFD, so a
/// value can neither break the database (PostgreSQL refuses NUL in text) nor forge a line where
/// the log is read as text; at most [`MAX_AUDIT_TEXT`] characters.
pub fn clean_audit_text(text: &str) -> String {
    text.chars().take(MAX_AUDIT_TEXT).map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect()
}

impl AuditEvent {
    /// The event with every text field cleaned ([`clean_audit_text`]): the one step every event
    /// passes before storage, whatever request values it copied.
    pub fn cleaned(mut self) -> Self {
        for field in [
            &mut self.grant_type,
            &mut self.client_id,
            &mut self.subject,
            &mut self.resource,
            &mut self.scope,
            &mut self.jti,
            &mut self.parent_jti,
            &mut self.detail,
        ] {
            if let Some(text) = field.as_mut()
                && (text.chars().any(char::is_control) || text.chars().nth(MAX_AUDIT_TEXT).is_some())
            {
                *text = clean_audit_text(text);
            }
        }
        self.outcome = clean_audit_text(&self.outcome);
        self
    }

    pub fn new(at: UnixTime, kind: AuditKind, outcome: impl Into<String>) -> Self {
        Self {
            at,
            kind,
            grant_type: None,
            client_id: None,
            subject: None,
            resource: None,
            scope: None,
            outcome: outcome.into(),
            jti: None,
            parent_jti: None,
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_length_are_cleaned() {
        let mut e = AuditEvent::new(0, AuditKind::TokenRefused, "invalid_request");
        e.client_id = Some("x\0y".into());
        e.grant_type = Some("a\nFORGED line\r\u{1b}[31m".into());
        e.detail = Some("é".repeat(600));
        let e = e.cleaned();
        assert_eq!(e.client_id.as_deref(), Some("x\u{FFFD}y"));
        assert_eq!(e.grant_type.as_deref(), Some("a\u{FFFD}FORGED line\u{FFFD}\u{FFFD}[31m"));
        assert_eq!(e.detail.unwrap().chars().count(), MAX_AUDIT_TEXT);
    }
}
