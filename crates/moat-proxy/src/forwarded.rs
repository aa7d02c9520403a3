//! The client's address behind trusted proxies (`server.trusted_proxies`).
//!
//! `X-Forwarded-For` is a list each proxy appends its peer to, so only the entries added by
//! proxies we trust are believed: walking from the right, past trusted addresses, the first
//! untrusted one is the client. Anything to its left was written by the client and may be forged.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The client's address: `peer` itself unless it is a trusted proxy, else the right-most entry
/// of `X-Forwarded-For` outside `trusted`. When every entry is trusted, the left-most one; when
/// an entry cannot be read, the trusted address to its right (nothing further left can be
/// believed).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    // Several headers read as one list, in order.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// An address as proxies write it: bare, `ip:port` or `[v6]:port`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let trusted: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let h = with(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let trusted: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let peer = ip("127.0.0.1");
        // The client forged the first entry; our own proxy (10.1.2.3) appended the real one.
        let h = with(&["1.2.3.4, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("203.0.113.9"));
        // Every hop trusted: the left-most.
        assert_eq!(
            client_ip(peer, &with(&["10.0.0.7, 10.0.0.8"]), &trusted),
            ip("10.0.0.7")
        );
        // Garbage stops the walk at the last address we could read.
        assert_eq!(
            client_ip(peer, &with(&["1.2.3.4, junk, 10.0.0.8"]), &trusted),
            ip("10.0.0.8")
        );
        assert_eq!(client_ip(peer, &with(&["junk"]), &trusted), peer);
        // Ports and IPv6 forms.
        assert_eq!(
            client_ip(peer, &with(&["203.0.113.9:5555"]), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(peer, &with(&["[2001:db8::1]:443"]), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(peer, &with(&["::ffff:203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
    }
}
