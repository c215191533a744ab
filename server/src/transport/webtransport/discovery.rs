//! `GET /webtransport` on the HTTPS origin: where a page finds the
//! WebTransport endpoint and which certificate hashes to pin.
//!
//! ```json
//! {"url":"https://localhost:8443/wt",
//!  "serverCertificateHashes":[{"algorithm":"sha-256","value":"<base64>"}]}
//! ```
//!
//! The host is the one the page was loaded from (its `Host` header), the
//! port is the QUIC port, so a page served by `https://example.com/`
//! reaches the same machine over UDP. One exception: `localhost` becomes
//! the loopback address QUIC is bound to, because browsers resolve
//! `localhost` to `::1` first and, unlike WebSocket over TCP, do not fall
//! back to `127.0.0.1` for QUIC. `serverCertificateHashes` lists the
//! development certificate's hash (what `new WebTransport(url, {
//! serverCertificateHashes })` takes, base64 of the SHA-256 of the leaf's
//! DER); with a certificate from files it is empty and the browser verifies
//! the certificate as usual.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

/// The URL path of the discovery document.
pub const PATH: &str = "/webtransport";

/// What `GET /webtransport` answers, fixed at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The QUIC (UDP) port.
    pub port: u16,
    /// The QUIC socket's address when it is bound to a loopback address
    /// (`127.0.0.1`, `::1`): pages loaded from `localhost` get it instead
    /// of the name. Default none.
    pub loopback: Option<std::net::IpAddr>,
    /// The CONNECT path, like `/wt`.
    pub path: String,
    /// SHA-256 hashes of the certificate a browser may pin.
    pub certificate_hashes: Vec<[u8; 32]>,
}

/// Why a discovery request got no document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The request had no `Host` (HTTP/1.0).
    #[error("a Host header is required")]
    NoHost,
    /// The `Host` header is not a host name or an IP address (with an
    /// optional port).
    #[error("malformed Host header")]
    BadHost,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    url: String,
    server_certificate_hashes: Vec<Hash<'a>>,
}

#[derive(Serialize)]
struct Hash<'a> {
    algorithm: &'a str,
    value: String,
}

impl Discovery {
    /// The JSON document for a page loaded from `host` (the `Host` header:
    /// `name`, `name:port`, `1.2.3.4:port` or `[::1]:port`).
    ///
    /// ```
    /// use tickwire_server::webtransport::Discovery;
    /// let d = Discovery {
    ///     port: 9443,
    ///     loopback: None,
    ///     path: "/wt".into(),
    ///     certificate_hashes: vec![[0; 32]],
    /// };
    /// let json = d.document(Some("example.com")).unwrap();
    /// assert!(json.starts_with(r#"{"url":"https://example.com:9443/wt","serverCertificateHashes":[{"algorithm":"sha-256""#));
    /// ```
    ///
    /// # Errors
    /// [`DiscoveryError`] when `host` is missing or malformed.
    pub fn document(&self, host: Option<&str>) -> Result<String, DiscoveryError> {
        let host = host_name(host.ok_or(DiscoveryError::NoHost)?)?;
        let host = match self.loopback {
            Some(ip) if host.eq_ignore_ascii_case("localhost") && ip.is_loopback() => {
                if ip.is_ipv6() {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                }
            }
            _ => host.to_owned(),
        };
        let doc = Document {
            url: format!("https://{host}:{}{}", self.port, self.path),
            server_certificate_hashes: self
                .certificate_hashes
                .iter()
                .map(|h| Hash {
                    algorithm: "sha-256",
                    value: BASE64.encode(h),
                })
                .collect(),
        };
        // A struct of strings always serializes.
        Ok(serde_json::to_string(&doc).unwrap_or_default())
    }
}

/// The host part of a `Host` header value, checked: a DNS name or IPv4
/// address (letters, digits, `.`, `-`), or a bracketed IPv6 address.
fn host_name(value: &str) -> Result<&str, DiscoveryError> {
    let (name, rest) = if let Some(v6) = value.strip_prefix('[') {
        let end = v6.find(']').ok_or(DiscoveryError::BadHost)?;
        let (addr, rest) = value.split_at(end + 2);
        if !v6[..end]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(DiscoveryError::BadHost);
        }
        (addr, rest)
    } else {
        let end = value.find(':').unwrap_or(value.len());
        let (name, rest) = value.split_at(end);
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(DiscoveryError::BadHost);
        }
        (name, rest)
    };
    let port_ok = match rest.strip_prefix(':') {
        None => rest.is_empty(),
        Some(port) => port.parse::<u16>().is_ok(),
    };
    if name.is_empty() || name.len() > 255 || !port_ok {
        return Err(DiscoveryError::BadHost);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery(hashes: Vec<[u8; 32]>) -> Discovery {
        Discovery {
            port: 4433,
            loopback: None,
            path: "/wt".into(),
            certificate_hashes: hashes,
        }
    }

    #[test]
    fn the_url_keeps_the_page_host_and_takes_the_quic_port() {
        let d = discovery(vec![]);
        for (host, url) in [
            ("localhost:8443", "https://localhost:4433/wt"),
            ("example.com", "https://example.com:4433/wt"),
            ("127.0.0.1:8443", "https://127.0.0.1:4433/wt"),
            ("[::1]:8443", "https://[::1]:4433/wt"),
            ("[::1]", "https://[::1]:4433/wt"),
        ] {
            let doc: serde_json::Value =
                serde_json::from_str(&d.document(Some(host)).unwrap()).unwrap();
            assert_eq!(doc["url"], url, "{host}");
            assert_eq!(doc["serverCertificateHashes"], serde_json::json!([]));
        }
    }

    #[test]
    fn localhost_becomes_the_bound_loopback_address() {
        let url = |loopback: Option<&str>, host: &str| {
            let d = Discovery {
                loopback: loopback.map(|ip| ip.parse().unwrap()),
                ..discovery(vec![])
            };
            let doc: serde_json::Value =
                serde_json::from_str(&d.document(Some(host)).unwrap()).unwrap();
            doc["url"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            url(Some("127.0.0.1"), "localhost:8443"),
            "https://127.0.0.1:4433/wt"
        );
        assert_eq!(
            url(Some("127.0.0.1"), "LocalHost"),
            "https://127.0.0.1:4433/wt"
        );
        assert_eq!(url(Some("::1"), "localhost"), "https://[::1]:4433/wt");
        assert_eq!(
            url(Some("127.0.0.1"), "example.com"),
            "https://example.com:4433/wt"
        );
        assert_eq!(url(None, "localhost"), "https://localhost:4433/wt");
    }

    #[test]
    fn hashes_are_base64_sha256_entries() {
        let mut hash = [0u8; 32];
        hash[0] = 0xfb;
        let doc: serde_json::Value =
            serde_json::from_str(&discovery(vec![hash]).document(Some("h")).unwrap()).unwrap();
        assert_eq!(
            doc["serverCertificateHashes"],
            serde_json::json!([{"algorithm": "sha-256", "value": BASE64.encode(hash)}])
        );
    }

    #[test]
    fn malformed_hosts_are_refused() {
        let d = discovery(vec![]);
        assert_eq!(d.document(None), Err(DiscoveryError::NoHost));
        for host in [
            "",
            ":8443",
            "a\"b",
            "evil.com/x",
            "a b",
            "host:port",
            "host:99999",
            "[::1",
            "[zz::1]:1",
            "[::1]x",
            "h:1:2",
        ] {
            assert_eq!(
                d.document(Some(host)),
                Err(DiscoveryError::BadHost),
                "{host:?}"
            );
        }
    }
}
