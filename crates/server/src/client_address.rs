//! The address of the client behind the connection: the peer itself, or, when the peer is one of
//! `[server] trusted_proxies`, the right-most address in its `Forwarded` (RFC 7239 §4) or
//! `X-Forwarded-For` header that is not itself a trusted proxy. Addresses further left were
//! written by the client and prove nothing. Limits, logs and audit events use this address; with
//! no trusted proxies (the default) every forwarding header is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::state::AppState;

/// The client's address, as [`resolve`] decided it; an extension of every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Middleware: puts the [`ClientAddress`] into the request's extensions.
pub async fn attach(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let address = resolve(peer, req.headers(), &state.settings.trusted_proxies);
    req.extensions_mut().insert(ClientAddress(address));
    tracing::Span::current().record("client", tracing::field::display(address));
    next.run(req).await
}

/// The client address for a connection from `peer` carrying `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // RFC 7239 wins over the older header when both are sent; a list that cannot be read whole
    // is not used at all (the proxy's own address stands).
    let chain = if headers.contains_key("forwarded") { forwarded_for(headers) } else { x_forwarded_for(headers) };
    let Some(chain) = chain else { return peer };
    let mut client = peer;
    for hop in chain.iter().rev() {
        client = *hop;
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

/// Every `for=` of every `Forwarded` header, in order; `None` if any element has none or one
/// that is not an IP address (`unknown`, obfuscated identifiers: RFC 7239 §6).
pub fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        for element in value.to_str().ok()?.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then(|| value.trim())
            })?;
            hops.push(parse_node(node.trim_matches('"'))?);
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// Every address of every `X-Forwarded-For` header, in order; `None` if one is not an address.
pub fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for item in value.to_str().ok()?.split(',') {
            hops.push(parse_node(item.trim())?);
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:4711` or a bare IPv6 address.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(|p| !p.is_empty())) {
            return None;
        }
        return ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    node.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    const PROXY: &str = "10.0.0.1";

    #[test]
    fn untrusted_peers_are_their_own_address() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")]);
        assert_eq!(
            resolve("198.51.100.1".parse().unwrap(), &h, &nets(&["10.0.0.0/8"])),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            resolve(PROXY.parse().unwrap(), &h, &[]),
            PROXY.parse::<IpAddr>().unwrap(),
            "no trusted proxies: headers ignored"
        );
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer: IpAddr = PROXY.parse().unwrap();
        let cases = [
            (("x-forwarded-for", "203.0.113.9"), "203.0.113.9"),
            (("x-forwarded-for", "6.6.6.6, 203.0.113.9"), "203.0.113.9"),
            (("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.7"), "203.0.113.9"),
            (("x-forwarded-for", "10.0.0.9, 10.0.0.7"), "10.0.0.9"),
            (("x-forwarded-for", "not-an-ip, 203.0.113.9"), PROXY),
            (("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60"),
            (("forwarded", "for=\"[2001:db8:cafe::17]:4711\""), "2001:db8:cafe::17"),
            (("forwarded", "for=6.6.6.6, for=198.51.100.17;proto=https"), "198.51.100.17"),
            (("forwarded", "for=unknown"), PROXY),
            (("forwarded", "proto=https"), PROXY),
        ];
        for ((name, value), expected) in cases {
            assert_eq!(
                resolve(peer, &headers(&[(name, value)]), &trusted),
                expected.parse::<IpAddr>().unwrap(),
                "{name}: {value}"
            );
        }
        let both = headers(&[("forwarded", "for=192.0.2.60"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(resolve(peer, &both, &trusted), "192.0.2.60".parse::<IpAddr>().unwrap(), "Forwarded wins");
    }

    proptest! {
        /// Whatever a client writes into the headers, the answer is the peer or an address the
        /// header named, and never an address to the left of an untrusted one (spoofable).
        #[test]
        fn no_header_moves_the_client_left_of_the_first_untrusted_hop(
            spoofed in proptest::collection::vec(any::<[u8; 4]>(), 0..4),
            real in any::<[u8; 4]>(),
            garbage in "\\PC{0,40}",
            forwarded in any::<bool>(),
        ) {
            let trusted = nets(&["10.0.0.0/8"]);
            let real = IpAddr::from(real);
            prop_assume!(!trusted[0].contains(&real));
            let mut hops: Vec<String> = spoofed.iter().map(|b| IpAddr::from(*b).to_string()).collect();
            hops.push(real.to_string());
            let value = if forwarded {
                hops.iter().map(|h| format!("for=\"{h}\"")).collect::<Vec<_>>().join(", ")
            } else {
                hops.join(", ")
            };
            let name = if forwarded { "forwarded" } else { "x-forwarded-for" };
            prop_assert_eq!(resolve(PROXY.parse().unwrap(), &headers(&[(name, &value)]), &trusted), real);
            // Arbitrary text never panics and never yields an address it did not contain.
            if let Ok(v) = HeaderValue::from_str(&garbage) {
                let mut h = HeaderMap::new();
                h.insert(name, v);
                let got = resolve(PROXY.parse().unwrap(), &h, &trusted);
                prop_assert!(got == PROXY.parse::<IpAddr>().unwrap() || garbage.contains(&got.to_string()) || garbage.contains(':'));
            }
        }
    }
}
