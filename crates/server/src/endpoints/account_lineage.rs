//! The person's view of what agents did for them: a token's chain of custody drawn as a graph
//! (server-rendered SVG, no script), and the kill switch for a chain that is theirs.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use mandate_core::OAuthError;
use minijinja::context;
use serde::Serialize;

use crate::error::Failure;
use crate::form::OAuthForm;
use crate::lineage::{Lineage, Node};
use crate::state::AppState;
use crate::web::{csrf, error_page, page, see_other, session, templates};

const BOX_WIDTH: i64 = 300;
const BOX_HEIGHT: i64 = 56;
const INDENT: i64 = 36;
const ROW: i64 = 72;

#[derive(Serialize)]
struct DrawnNode {
    index: usize,
    x: i64,
    y: i64,
    class: &'static str,
    client_id: String,
    audience: String,
    detail: String,
    revoked: bool,
}

#[derive(Serialize)]
struct Edge {
    x1: i64,
    y1: i64,
    x2: i64,
    y2: i64,
    actor: bool,
}

/// Lays the tree out as indented rows, each child joined to its parent by an elbow.
fn layout(lineage: &Lineage, now: i64) -> (Vec<DrawnNode>, Vec<Edge>, i64, i64) {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    fn place(
        node: &Node,
        depth: i64,
        parent: Option<(i64, i64)>,
        focus: &str,
        now: i64,
        nodes: &mut Vec<DrawnNode>,
        edges: &mut Vec<Edge>,
    ) {
        let (x, y) = (10 + depth * INDENT, 10 + nodes.len() as i64 * ROW);
        if let Some((px, py)) = parent {
            edges.push(Edge { x1: px + 14, y1: py + BOX_HEIGHT, x2: x, y2: y + BOX_HEIGHT / 2, actor: node.via_actor });
        }
        let mut detail = node.scope.clone().unwrap_or_default();
        if !node.actors.is_empty() {
            detail = format!("acting: {} · {detail}", node.actors.join(" ← "));
        }
        if node.expires_at <= now && !node.revoked {
            detail.push_str(" · expired");
        }
        let class = match (node.jti == focus, node.revoked) {
            (_, true) => "revoked",
            (true, false) => "focus",
            _ => "",
        };
        nodes.push(DrawnNode {
            index: nodes.len(),
            x,
            y,
            class,
            client_id: node.client_id.clone(),
            audience: node.audience.clone(),
            detail,
            revoked: node.revoked,
        });
        for c in &node.children {
            place(c, depth + 1, Some((x, y)), focus, now, nodes, edges);
        }
    }
    place(&lineage.root, 0, None, &lineage.focus, now, &mut nodes, &mut edges);
    let depth = lineage.flatten().iter().map(|(d, _)| *d as i64).max().unwrap_or(0);
    let height = 20 + nodes.len() as i64 * ROW;
    (nodes, edges, 20 + depth * INDENT + BOX_WIDTH, height)
}

/// The lineage of `jti` if it is the signed-in person's (the chain's subject, or the grant's).
async fn owned(state: &AppState, username: &str, jti: &str) -> Result<Lineage, OAuthError> {
    let lineage = crate::lineage::of(state.store.as_ref(), jti).await?;
    lineage
        .filter(|l| l.root.subject == username || l.grant.as_ref().is_some_and(|g| g.username == username))
        .ok_or_else(|| OAuthError::invalid_request("there is no such token among yours"))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, Path(jti): Path<String>) -> Response {
    let result = async {
        let Some(session) = session::current(&state, &headers).await? else {
            return Ok(see_other(&state.settings.issuer.endpoint("/login")));
        };
        let lineage = owned(&state, &session.username, &jti).await?;
        let now = state.now();
        let (nodes, edges, width, height) = layout(&lineage, now);
        let focus_live = lineage.flatten().iter().any(|(_, n)| n.jti == jti && !n.revoked && n.expires_at > now);
        let csrf = csrf::token(&state, &headers);
        let html = templates::render(
            "lineage.html",
            context! {
                grant => minijinja::value::Serde(&lineage.grant),
                nodes => minijinja::value::Serde(&nodes),
                edges => minijinja::value::Serde(&edges),
                width, height,
                box_width => BOX_WIDTH,
                box_height => BOX_HEIGHT,
                can_revoke => focus_live,
                csrf => &csrf.value,
                revoke_action => state.settings.issuer.endpoint(&format!("/account/lineage/{jti}/revoke")),
                account_href => state.settings.issuer.endpoint("/account"),
            },
        )?;
        let mut response = page(StatusCode::OK, html);
        if let Some(cookie) = csrf.set_cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok::<_, OAuthError>(response)
    };
    result.await.unwrap_or_else(|e| error_page(&e))
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(jti): Path<String>,
    form: Result<OAuthForm, Failure>,
) -> Response {
    let result = async {
        let form = form.map_err(|f| f.0)?;
        csrf::check(&headers, form.get("csrf"))?;
        let Some(session) = session::current(&state, &headers).await? else {
            return Ok(see_other(&state.settings.issuer.endpoint("/login")));
        };
        owned(&state, &session.username, &jti).await?;
        let by = format!("{} on the account page", session.username);
        crate::lineage::revoke_subtree(state.store.as_ref(), &jti, &by, state.now()).await?;
        Ok(see_other(&state.settings.issuer.endpoint(&format!("/account/lineage/{jti}"))))
    };
    result.await.unwrap_or_else(|e: OAuthError| error_page(&e))
}
