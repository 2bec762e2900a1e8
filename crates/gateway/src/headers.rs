//! Which headers cross the gateway. RFC 9110 §7.6.1: hop-by-hop headers, and any the
//! `Connection` header names, concern one connection and are dropped in both directions; the
//! rest (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`, content headers, …) pass
//! through unchanged. Towards the upstream, the agent's credentials never go (MCP 2026-07-28:
//! no token passthrough; the layer already removed `Authorization`, this is the second lock) and
//! the gateway's own credential is put in their place. Towards the agent, the upstream's
//! challenges never go: they are about the gateway's credential, and an agent seeing them would
//! start an authorization with a server it has no business with.

use axum::http::{HeaderMap, HeaderName, header};

use crate::credential::UpstreamHeader;

/// RFC 9110 §7.6.1 and the non-standard ones still seen in the wild.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Header names listed in `Connection` (`Connection: close, X-Foo` makes `X-Foo` hop-by-hop).
fn named_by_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

fn end_to_end(headers: &HeaderMap, also_drop: &[HeaderName]) -> HeaderMap {
    let connection = named_by_connection(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if is_hop_by_hop(name) || connection.contains(name) || also_drop.contains(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// What the upstream receives: the agent's end-to-end headers without its credentials (an
/// `Authorization`, a `DPoP` proof for the gateway's URL) and without `Host` (the client sets the
/// upstream's), then the gateway's credential, replacing any header of the same name.
pub(crate) fn to_upstream(incoming: &HeaderMap, credentials: &[UpstreamHeader]) -> HeaderMap {
    let dpop = HeaderName::from_static("dpop");
    let mut out = end_to_end(incoming, &[header::AUTHORIZATION, dpop, header::HOST]);
    for credential in credentials {
        out.insert(credential.name().clone(), credential.value().clone());
    }
    out
}

/// What the agent receives: the upstream's end-to-end headers without its challenges.
pub(crate) fn to_agent(upstream: &HeaderMap) -> HeaderMap {
    end_to_end(upstream, &[header::WWW_AUTHENTICATE])
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn the_agent_credentials_and_connection_headers_stay_behind() {
        let incoming = map(&[
            ("host", "gateway.example"),
            ("authorization", "Bearer agent-token"),
            ("dpop", "proof"),
            ("connection", "keep-alive, x-hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("x-api-key", "sent-by-the-agent"),
            ("mcp-session-id", "s-1"),
            ("mcp-protocol-version", "2026-07-28"),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
        ]);
        let key = UpstreamHeader::parse("X-Api-Key: upstream-secret").unwrap();
        let out = to_upstream(&incoming, &[key]);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-api-key", "mcp-session-id", "mcp-protocol-version", "accept", "content-type"]);
        assert_eq!(out["x-api-key"], "upstream-secret", "the gateway's credential replaces the agent's");
        assert_eq!(out["mcp-session-id"], "s-1");
    }

    #[test]
    fn the_upstream_challenges_stay_behind() {
        let upstream = map(&[
            ("www-authenticate", "Basic realm=upstream"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/event-stream"),
            ("mcp-session-id", "s-1"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let out = to_agent(&upstream);
        assert!(!out.contains_key("www-authenticate") && !out.contains_key("transfer-encoding"));
        assert_eq!(out["mcp-session-id"], "s-1");
        assert_eq!(out.get_all("set-cookie").iter().count(), 2);
    }
}
