//! A token's lineage: from the person's grant through every agent's exchange to each resource,
//! as a tree (for `mandate audit lineage`, the admin API and the account page), and the kill
//! switch: revoking a token revokes everything exchanged from it, on every instance, because
//! revocation checks follow a token's ancestors (`RevocationStore::is_access_token_revoked`).

use mandate_core::{Actor, AuditEvent, AuditKind, OAuthError, UnixTime};
use mandate_store::{Grant, Store, TokenRecord};
use serde::Serialize;

use crate::error::store_error;

/// At most this many tokens are shown in one tree (a runaway chain is cut, with a note).
const MAX_NODES: usize = 2000;

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub jti: String,
    pub kind: String,
    pub subject: String,
    pub client_id: String,
    pub audience: String,
    pub scope: Option<String>,
    /// The actors, current first (`act`, RFC 8693).
    pub actors: Vec<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
    /// Reached as actor token of its parent's child, not as subject token.
    pub via_actor: bool,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    /// The person and client of the grant the chain starts from, if it starts from one.
    pub grant: Option<GrantView>,
    /// The token asked about.
    pub focus: String,
    pub root: Node,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    pub grant_id: String,
    pub username: String,
    pub client_id: String,
    pub revoked: bool,
}

fn actors(record: &TokenRecord) -> Vec<String> {
    record.act.as_deref().and_then(|a| serde_json::from_str::<Actor>(a).ok()).map(|a| a.chain()).unwrap_or_default()
}

/// The lineage of `jti`: up to the first token of its chain, then down through everything
/// exchanged from it. `None` for a token this server has no record of.
pub async fn of(store: &dyn Store, jti: &str) -> Result<Option<Lineage>, OAuthError> {
    let Some(mut top) = store.get_token_record(jti).await.map_err(store_error)? else { return Ok(None) };
    let mut guard = 0;
    while let Some(parent) = top.parent_jti.clone() {
        match store.get_token_record(&parent).await.map_err(store_error)? {
            Some(record) if guard < 64 => {
                top = record;
                guard += 1;
            }
            _ => break,
        }
    }
    let grant = match &top.grant_id {
        Some(id) => store.get_grant(id).await.map_err(store_error)?.map(|g: Grant| GrantView {
            grant_id: g.grant_id,
            username: g.username,
            client_id: g.client_id,
            revoked: g.revoked_at.is_some(),
        }),
        None => None,
    };
    let mut budget = MAX_NODES;
    let root = build(store, top, false, &mut budget).await?;
    Ok(Some(Lineage { grant, focus: jti.to_owned(), root, truncated: budget == 0 }))
}

async fn build(
    store: &dyn Store,
    record: TokenRecord,
    via_actor: bool,
    budget: &mut usize,
) -> Result<Node, OAuthError> {
    *budget = budget.saturating_sub(1);
    let revoked = store.is_access_token_revoked(&record.jti).await.map_err(store_error)?;
    let mut children = Vec::new();
    if *budget > 0 {
        for child in store.token_children(&record.jti).await.map_err(store_error)? {
            if *budget == 0 {
                break;
            }
            let as_actor = child.parent_jti.as_deref() != Some(record.jti.as_str());
            children.push(Box::pin(build(store, child, as_actor, budget)).await?);
        }
    }
    Ok(Node {
        actors: actors(&record),
        jti: record.jti,
        kind: record.kind,
        subject: record.subject,
        client_id: record.client_id,
        audience: record.audience,
        scope: record.scope,
        issued_at: record.issued_at,
        expires_at: record.expires_at,
        revoked,
        via_actor,
        children,
    })
}

/// One token of a person's, for a search across chains (`GET /admin/tokens`,
/// `mandate audit tokens`): what it is, and whether it still works.
#[derive(Debug, Clone, Serialize)]
pub struct TokenSummary {
    pub jti: String,
    pub kind: String,
    pub client_id: String,
    pub audience: String,
    pub scope: Option<String>,
    /// The actors, current first (`act`, RFC 8693); empty for a token the client got directly.
    pub actors: Vec<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
    /// Neither revoked (itself or through an ancestor) nor expired.
    pub live: bool,
}

/// The newest `limit` tokens issued for `subject` (a person's username, or a client acting for
/// itself), newest first.
pub async fn tokens_of(
    store: &dyn Store,
    subject: &str,
    limit: u32,
    now: UnixTime,
) -> Result<Vec<TokenSummary>, OAuthError> {
    let mut tokens = Vec::new();
    for record in store.recent_tokens_of_subject(subject, limit).await.map_err(store_error)? {
        let revoked = store.is_access_token_revoked(&record.jti).await.map_err(store_error)?;
        tokens.push(TokenSummary {
            actors: actors(&record),
            live: !revoked && record.expires_at > now,
            jti: record.jti,
            kind: record.kind,
            client_id: record.client_id,
            audience: record.audience,
            scope: record.scope,
            issued_at: record.issued_at,
            expires_at: record.expires_at,
            revoked,
        });
    }
    Ok(tokens)
}

impl Lineage {
    /// Every node, depth first, with its depth.
    pub fn flatten(&self) -> Vec<(usize, &Node)> {
        fn walk<'a>(node: &'a Node, depth: usize, out: &mut Vec<(usize, &'a Node)>) {
            out.push((depth, node));
            for c in &node.children {
                walk(c, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, 0, &mut out);
        out
    }

    /// The tree as text: the person, then each token with its client, audience, scope and actors.
    pub fn render_text(&self, now: UnixTime) -> String {
        let mut out = String::new();
        match &self.grant {
            Some(g) => out.push_str(&format!(
                "{} authorized {} (grant {}{})\n",
                g.username,
                g.client_id,
                g.grant_id,
                if g.revoked { ", revoked" } else { "" }
            )),
            None => out.push_str(&format!("{} (no grant: client credentials or an assertion)\n", self.root.subject)),
        }
        fn line(node: &Node, prefix: &str, last: bool, focus: &str, now: UnixTime, out: &mut String) {
            let branch = if last { "└─ " } else { "├─ " };
            let mut text = format!("{prefix}{branch}{} {}", node.jti, node.client_id);
            if !node.actors.is_empty() {
                text.push_str(&format!(" (acting: {})", node.actors.join(" ← ")));
            }
            text.push_str(&format!(" → {}", node.audience));
            if let Some(scope) = &node.scope {
                text.push_str(&format!(" [{scope}]"));
            }
            if node.kind != "access_token" {
                text.push_str(&format!(" {{{}}}", node.kind));
            }
            if node.via_actor {
                text.push_str(" (as actor)");
            }
            if node.revoked {
                text.push_str(" REVOKED");
            } else if node.expires_at <= now {
                text.push_str(" expired");
            }
            if node.jti == focus {
                text.push_str("   ◀");
            }
            out.push_str(&text);
            out.push('\n');
            let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
            for (i, c) in node.children.iter().enumerate() {
                line(c, &child_prefix, i + 1 == node.children.len(), focus, now, out);
            }
        }
        line(&self.root, "", true, &self.focus, now, &mut out);
        if self.truncated {
            out.push_str(&format!("(cut at {MAX_NODES} tokens)\n"));
        }
        out
    }
}

/// The kill switch: revokes `jti`, and with it everything exchanged from it; audited. Returns how
/// many tokens of the subtree were still live.
pub async fn revoke_subtree(
    store: &dyn Store,
    jti: &str,
    by: &str,
    now: UnixTime,
) -> Result<Option<usize>, OAuthError> {
    let Some(lineage) = of(store, jti).await? else { return Ok(None) };
    let Some((_, node)) = lineage.flatten().into_iter().find(|(_, n)| n.jti == jti) else { return Ok(None) };
    fn live(node: &Node, now: UnixTime) -> usize {
        usize::from(!node.revoked && node.expires_at > now) + node.children.iter().map(|c| live(c, now)).sum::<usize>()
    }
    let affected = live(node, now);
    store.revoke_access_token(jti, node.expires_at, now).await.map_err(store_error)?;
    let mut event = AuditEvent::new(now, AuditKind::TokenRevoked, "ok");
    event.subject = Some(node.subject.clone());
    event.client_id = Some(node.client_id.clone());
    event.resource = Some(node.audience.clone());
    event.jti = Some(jti.to_owned());
    event.detail = Some(format!("subtree revoked by {by}: {affected} live token(s)"));
    crate::audit::record_issuance(store, &event).await?;
    tracing::info!(jti, by, affected, "token subtree revoked");
    Ok(Some(affected))
}

/// What revoking a grant did: the person's consent to a client is withdrawn, so its refresh
/// tokens are refused (`invalid_grant`) and every token issued or exchanged from it fails
/// introspection, on every instance.
#[derive(Debug, Clone, Serialize)]
pub struct GrantRevocation {
    pub grant_id: String,
    pub username: String,
    pub client_id: String,
    /// `false`: it had been revoked already.
    pub was_live: bool,
}

/// What `mandate audit revoke ID` and `POST /admin/lineage/{id}/revoke` reached.
#[derive(Debug, Clone)]
pub enum Revocation {
    /// A token and everything exchanged from it.
    Subtree {
        jti: String,
        live_tokens_revoked: usize,
        /// The grant the chain starts from, when it is still live: its client can refresh and get
        /// new tokens until the grant is revoked too.
        live_grant: Option<GrantView>,
    },
    /// A person's grant to a client, with everything issued from it.
    Grant(GrantRevocation),
}

/// The kill switch by id: a token's jti (its subtree), else a grant id (as `audit lineage`
/// prints it, also accepted as `grant:<id>`, as the audit log writes it). `None` when neither is
/// on record.
pub async fn revoke(store: &dyn Store, id: &str, by: &str, now: UnixTime) -> Result<Option<Revocation>, OAuthError> {
    if let Some(grant_id) = id.strip_prefix("grant:") {
        return Ok(revoke_grant(store, grant_id, by, now).await?.map(Revocation::Grant));
    }
    if store.get_token_record(id).await.map_err(store_error)?.is_some() {
        let Some(affected) = revoke_subtree(store, id, by, now).await? else { return Ok(None) };
        let live_grant = of(store, id).await?.and_then(|l| l.grant).filter(|g| !g.revoked);
        return Ok(Some(Revocation::Subtree { jti: id.to_owned(), live_tokens_revoked: affected, live_grant }));
    }
    Ok(revoke_grant(store, id, by, now).await?.map(Revocation::Grant))
}

/// Revokes grant `grant_id` and everything issued from it; audited. `None` for an unknown grant.
pub async fn revoke_grant(
    store: &dyn Store,
    grant_id: &str,
    by: &str,
    now: UnixTime,
) -> Result<Option<GrantRevocation>, OAuthError> {
    let Some(grant) = store.get_grant(grant_id).await.map_err(store_error)? else { return Ok(None) };
    let was_live = store.revoke_grant(grant_id, now).await.map_err(store_error)?;
    let mut event = AuditEvent::new(now, AuditKind::GrantRevoked, "ok");
    event.subject = Some(grant.username.clone());
    event.client_id = Some(grant.client_id.clone());
    event.jti = Some(format!("grant:{grant_id}"));
    event.detail = Some(if was_live {
        format!("grant revoked by {by}")
    } else {
        format!("grant revoked again by {by} (it was revoked already)")
    });
    crate::audit::record_issuance(store, &event).await?;
    tracing::info!(grant_id, by, was_live, "grant revoked with every token issued from it");
    Ok(Some(GrantRevocation {
        grant_id: grant.grant_id,
        username: grant.username,
        client_id: grant.client_id,
        was_live,
    }))
}

/// What revoking every grant of a person for a client found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantsOf {
    /// This many live grants were revoked (none: the person had no live grant for the client).
    Revoked(u64),
    /// Nothing was revoked and no person has this username.
    NoSuchUser,
    /// Nothing was revoked and no client has this id.
    NoSuchClient,
}

/// Revokes every live grant `username` gave `client_id`, with everything issued from them; audited.
/// A misspelt name is told apart from "nothing left to revoke", which matters during an incident.
pub async fn revoke_grants_of(
    store: &dyn Store,
    username: &str,
    client_id: &str,
    by: &str,
    now: UnixTime,
) -> Result<GrantsOf, OAuthError> {
    let revoked = store.revoke_grants_of(username, client_id, now).await.map_err(store_error)?;
    if revoked == 0 {
        if store.get_user(username).await.map_err(store_error)?.is_none() {
            return Ok(GrantsOf::NoSuchUser);
        }
        if store.get_client(client_id).await.map_err(store_error)?.is_none() {
            return Ok(GrantsOf::NoSuchClient);
        }
    }
    let mut event = AuditEvent::new(now, AuditKind::GrantRevoked, "ok");
    event.subject = Some(username.to_owned());
    event.client_id = Some(client_id.to_owned());
    event.detail = Some(format!("every grant of {username} for {client_id} revoked by {by}: {revoked} live grant(s)"));
    crate::audit::record_issuance(store, &event).await?;
    tracing::info!(username, client_id, by, revoked, "grants of a person for a client revoked");
    Ok(GrantsOf::Revoked(revoked))
}
