//! Which browser origins may open a WebSocket (and read the WebTransport
//! discovery document): [`OriginPolicy`].

use std::net::{IpAddr, SocketAddr};

/// Which `Origin`s may open a WebSocket.
///
/// Browsers always send `Origin` on WebSocket upgrades; a page served from
/// another site must not be able to connect on a visitor's behalf, so only
/// the allowlisted origins get through. Native clients send no `Origin`;
/// whether they may connect is `allow_missing`.
///
/// Origins are compared as whole serialized origins
/// (`scheme://host[:port]`), ASCII case-insensitively (scheme and host are
/// case-insensitive per RFC 6454), with no wildcards or prefix matching.
/// Browsers omit default ports (`https://example.com`, not `:443`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    /// The allowed origins, like `https://localhost:8443`. Default: empty.
    pub allowed: Vec<String>,
    /// Whether a request without an `Origin` header (a native client) is
    /// allowed. Default: `true`.
    pub allow_missing: bool,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            allow_missing: true,
        }
    }
}

impl OriginPolicy {
    /// A policy allowing exactly `allowed` (trimmed, a trailing `/`
    /// removed) plus requests without an `Origin`.
    pub fn new(allowed: impl IntoIterator<Item = String>) -> Self {
        let mut policy = Self::default();
        for origin in allowed {
            policy.push(origin);
        }
        policy
    }

    /// The server's own origins for a listener bound to `addr`:
    /// `https://localhost:PORT` and `https://127.0.0.1:PORT`, plus
    /// `https://[::1]:PORT` when `addr` is IPv6, plus `addr`'s own IP when
    /// it is a specific address, plus `extra` (for example a public host
    /// name). With `tls == false` the scheme is `http`. The port is left out
    /// when it is the scheme's default (443 / 80), as browsers do. `addr`
    /// should be the bound address (not port 0).
    pub fn for_server(addr: SocketAddr, tls: bool, extra: Vec<String>) -> Self {
        let (scheme, default_port) = if tls { ("https", 443) } else { ("http", 80) };
        let port = addr.port();
        let origin = |host: &str| {
            if port == default_port {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}:{port}")
            }
        };
        let mut policy = Self::default();
        policy.push(origin("localhost"));
        policy.push(origin("127.0.0.1"));
        if addr.is_ipv6() {
            policy.push(origin("[::1]"));
        }
        match addr.ip() {
            ip if ip.is_unspecified() => {}
            IpAddr::V4(ip) => policy.push(origin(&ip.to_string())),
            IpAddr::V6(ip) => policy.push(origin(&format!("[{ip}]"))),
        }
        for origin in extra {
            policy.push(origin);
        }
        policy
    }

    /// Adds one origin (trimmed, a trailing `/` removed) unless already
    /// present.
    fn push(&mut self, origin: String) {
        let trimmed = origin.trim();
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        if !trimmed.is_empty() && !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(trimmed)) {
            self.allowed.push(trimmed.to_owned());
        }
    }

    /// Whether a request with this `Origin` header value (or none) may
    /// upgrade.
    pub fn is_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            None => self.allow_missing,
            Some(origin) => self.allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_policy_for_server() {
        let p = OriginPolicy::for_server("127.0.0.1:8443".parse().unwrap(), true, Vec::new());
        assert_eq!(
            p.allowed,
            ["https://localhost:8443", "https://127.0.0.1:8443"]
        );
        assert!(p.allow_missing);

        let p = OriginPolicy::for_server(
            "[::]:443".parse().unwrap(),
            true,
            vec!["https://game.example.com/ ".to_owned()],
        );
        assert_eq!(
            p.allowed,
            [
                "https://localhost",
                "https://127.0.0.1",
                "https://[::1]",
                "https://game.example.com"
            ]
        );

        let p = OriginPolicy::for_server("192.168.1.5:8080".parse().unwrap(), false, Vec::new());
        assert_eq!(
            p.allowed,
            [
                "http://localhost:8080",
                "http://127.0.0.1:8080",
                "http://192.168.1.5:8080"
            ]
        );
        assert!(p.is_allowed(Some("http://LocalHost:8080")));
        assert!(!p.is_allowed(Some("http://localhost:8081")));
        assert!(!p.is_allowed(Some("https://localhost:8080")));
        assert!(!p.is_allowed(Some("http://localhost:8080.evil.example")));
        assert!(!p.is_allowed(Some("null")));
        assert!(p.is_allowed(None));
    }
}
