//! Which IP addresses an outbound fetch may connect to: the SSRF address filter (IANA special-purpose
//! registries, RFC 6890 and its updates).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 ranges that are not globally reachable unicast (IANA IPv4 special-purpose registry).
static BLOCKED_V4: LazyLock<Vec<Ipv4Net>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",       // "this network" (RFC 791)
        "10.0.0.0/8",      // private (RFC 1918)
        "100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",     // loopback
        "169.254.0.0/16",  // link-local, cloud metadata endpoints (RFC 3927)
        "172.16.0.0/12",   // private (RFC 1918)
        "192.0.0.0/24",    // IETF protocol assignments (RFC 6890)
        "192.0.2.0/24",    // TEST-NET-1 (RFC 5737)
        "192.88.99.0/24",  // 6to4 relay anycast (RFC 7526)
        "192.168.0.0/16",  // private (RFC 1918)
        "198.18.0.0/15",   // benchmarking (RFC 2544)
        "198.51.100.0/24", // TEST-NET-2 (RFC 5737)
        "203.0.113.0/24",  // TEST-NET-3 (RFC 5737)
        "224.0.0.0/4",     // multicast
        "240.0.0.0/4",     // reserved, including broadcast 255.255.255.255
    ]
    .iter()
    .map(|net| net.parse().expect("static IPv4 CIDR"))
    .collect()
});

/// IPv6 ranges that are blocked outright (IANA IPv6 special-purpose registry). Everything outside
/// 2000::/3 is blocked anyway; the ranges there are still listed so that this table reads as the
/// registry does.
static BLOCKED_V6: LazyLock<Vec<Ipv6Net>> = LazyLock::new(|| {
    [
        "::/96",          // unspecified, loopback, IPv4-compatible (RFC 4291 §2.5.5.1)
        "64:ff9b::/96",   // NAT64 well-known prefix (RFC 6052)
        "64:ff9b:1::/48", // NAT64 local-use prefix (RFC 8215)
        "100::/64",       // discard-only (RFC 6666)
        "2001::/32",      // Teredo (RFC 4380)
        "2001:2::/48",    // benchmarking (RFC 5180)
        "2001:10::/28",   // ORCHID (RFC 4843)
        "2001:20::/28",   // ORCHIDv2 (RFC 7343)
        "2001:db8::/32",  // documentation (RFC 3849)
        "3fff::/20",      // documentation (RFC 9637)
        "fc00::/7",       // unique local (RFC 4193)
        "fe80::/10",      // link-local
        "fec0::/10",      // site-local, deprecated (RFC 3879)
        "ff00::/8",       // multicast
    ]
    .iter()
    .map(|net| net.parse().expect("static IPv6 CIDR"))
    .collect()
});

/// Global unicast (RFC 4291 §2.4): the only IPv6 space handed out for the public Internet.
static GLOBAL_UNICAST_V6: LazyLock<Ipv6Net> = LazyLock::new(|| "2000::/3".parse().expect("static IPv6 CIDR"));

/// 6to4 (RFC 3056): 2002:AABB:CCDD::/48 tunnels to the IPv4 address AA.BB.CC.DD.
static SIX_TO_FOUR: LazyLock<Ipv6Net> = LazyLock::new(|| "2002::/16".parse().expect("static IPv6 CIDR"));

/// Whether an outbound fetch must not connect to `ip`: loopback, private, link-local, shared,
/// reserved, documentation, multicast and translation ranges. Addresses that embed an IPv4 address
/// (IPv4-mapped `::ffff:0:0/96`, 6to4 `2002::/16`) are judged by the embedded address.
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    BLOCKED_V4.iter().any(|net| net.contains(&ip))
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_blocked_v4(v4);
    }
    if SIX_TO_FOUR.contains(&ip) {
        let [_, hi, lo, ..] = ip.segments();
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        return is_blocked_v4(Ipv4Addr::new(a, b, c, d));
    }
    !GLOBAL_UNICAST_V6.contains(&ip) || BLOCKED_V6.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::is_blocked;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    #[test]
    fn blocks_every_special_purpose_range() {
        let blocked = [
            // IPv4
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "192.168.255.255",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6
            "::",
            "::1",
            "::7f00:1",  // IPv4-compatible 127.0.0.1
            "::808:808", // IPv4-compatible 8.8.8.8: deprecated, never routed
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "2002:7f00:1::1",   // 6to4 of 127.0.0.1
            "2002:a00:1::1",    // 6to4 of 10.0.0.1
            "2002:a9fe:a9fe::", // 6to4 of 169.254.169.254
            "3fff::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "4000::1", // outside 2000::/3: unallocated
            "::2",
        ];
        for addr in blocked {
            assert!(is_blocked(ip(addr)), "{addr} must be blocked");
        }
    }

    #[test]
    fn allows_public_addresses() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "100.63.255.255", // just below CGNAT
            "100.128.0.0",    // just above CGNAT
            "172.15.255.255", // just below 172.16/12
            "172.32.0.0",     // just above 172.16/12
            "169.253.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",  // IPv4-mapped public address
            "2002:808:808::1", // 6to4 of 8.8.8.8
            "2001:200::1",     // just past 2001::/23's blocked parts
        ];
        for addr in public {
            assert!(!is_blocked(ip(addr)), "{addr} must be allowed");
        }
    }
}
