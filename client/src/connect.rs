//! Transports: URL parsing, TLS trust, and opening a connection: a
//! WebSocket (`wss://`, and `ws://` for a server in plain development mode)
//! or QUIC (`quic://host:port`, ALPN `tickwire/1`).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tickwire_shared::Limits;
use tickwire_shared::client::AckPolicy;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::ClientError;
use crate::transport::Transport;

/// Which server certificates to trust.
///
/// There is no "system roots" option: the client must work offline, so the
/// trust anchor is always given explicitly.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Trust exactly this certificate as a root (for example the server's
    /// self-signed leaf, `RunningServer::tls_identity().leaf()`).
    Certificate(CertificateDer<'static>),
    /// Trust every certificate in this PEM file as a root.
    PemFile(PathBuf),
    /// **DANGER: accepts ANY server certificate, for local development
    /// only.** The connection is encrypted but not authenticated: anyone on
    /// the path can impersonate the server. Never use it outside loopback
    /// testing (the `arena-bots --insecure-dev-cert` flag maps to this).
    InsecureDevCertificate,
}

/// How to connect. Build it with [`ConnectOptions::new`] and the `with_*`
/// methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Which certificates to trust (ignored for `ws://`).
    pub trust: Trust,
    /// The auth token passed to the game's auth hook (many games use it as
    /// the player name). Default: none.
    pub auth_token: Option<String>,
    /// The room to join; `None` lets the server match one. Default: none.
    pub room: Option<String>,
    /// A resume token from an earlier welcome. Default: none.
    pub resume_token: Option<tickwire_shared::ResumeToken>,
    /// A seat token from a matchmaker ([`crate::matchmake`]). Default: none.
    pub seat_token: Option<String>,
    /// Decode limits (must match the server's). Default: [`Limits::default`].
    pub limits: Limits,
    /// TCP + TLS + WebSocket + hello/welcome must complete within this.
    /// Default: 10 s.
    pub handshake_timeout: Duration,
    /// How many snapshots to keep as delta baselines. Default: 64.
    pub baseline_capacity: usize,
    /// A simulated bad network on the client side, for tests and load
    /// generators: delays, drops, duplicates or reorders inbound snapshots
    /// (before they are decoded) and outbound `Inputs` messages (before they
    /// are sent), with this seed. Reliable messages are never conditioned.
    /// Default: none.
    pub conditioner: Option<(tickwire_shared::conditioner::ConditionerConfig, u64)>,
    /// Whether the ack of an applied snapshot waits for the client's next
    /// write instead of being written before [`crate::Client::next_event`]
    /// returns the snapshot. A client that answers each snapshot with its
    /// inputs ([`crate::Client::queue_input`], then
    /// [`crate::Client::send_pending`]) then sends both in one write (one
    /// TLS record, one system call) instead of two. The ack still goes out
    /// on the next call to `send_input`, `send_pending` or `next_event`; do
    /// not leave it waiting (the server picks delta baselines from acks).
    /// Default: false.
    pub defer_acks: bool,
    /// When applied snapshots are acknowledged (PROTOCOL.md §8.7). Default:
    /// [`AckPolicy::EVERY_SNAPSHOT`]; [`AckPolicy::DELAYED`] sends fewer.
    pub acks: AckPolicy,
    /// Ask for implicit acks (PROTOCOL.md §8.7,
    /// [`tickwire_shared::client::ClientConfig::implicit_acks`]): over WSS
    /// a server that grants them counts each snapshot it writes as
    /// acknowledged, and no `Ack` is sent (`acks` then applies only where
    /// they are not granted: QUIC). Turn it off to connect to a server that
    /// predates the option. Not asked when [`ConnectOptions::conditioner`]
    /// is set: that drops received snapshots after the transport delivered
    /// them, which a server counting writes as acks cannot allow.
    /// Default: true.
    pub implicit_acks: bool,
}

impl ConnectOptions {
    /// Options with the given trust and every default.
    #[must_use]
    pub fn new(trust: Trust) -> Self {
        Self {
            trust,
            auth_token: None,
            room: None,
            resume_token: None,
            seat_token: None,
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            baseline_capacity: 64,
            conditioner: None,
            defer_acks: false,
            acks: AckPolicy::EVERY_SNAPSHOT,
            implicit_acks: true,
        }
    }

    /// Sets [`ConnectOptions::acks`].
    #[must_use]
    pub fn with_acks(mut self, acks: AckPolicy) -> Self {
        self.acks = acks;
        self
    }

    /// Sets [`ConnectOptions::implicit_acks`].
    #[must_use]
    pub fn with_implicit_acks(mut self, on: bool) -> Self {
        self.implicit_acks = on;
        self
    }

    /// Sets [`ConnectOptions::defer_acks`].
    #[must_use]
    pub fn with_deferred_acks(mut self, defer: bool) -> Self {
        self.defer_acks = defer;
        self
    }

    /// Sets the auth token (often the player name).
    #[must_use]
    pub fn with_auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }

    /// Sets the room to join.
    #[must_use]
    pub fn with_room(mut self, room: impl Into<String>) -> Self {
        self.room = Some(room.into());
        self
    }

    /// Sets a resume token.
    #[must_use]
    pub fn with_resume_token(mut self, token: tickwire_shared::ResumeToken) -> Self {
        self.resume_token = Some(token);
        self
    }

    /// Sets the room and the seat token of a matchmaker's ticket
    /// ([`crate::matchmake::matchmake`]).
    #[must_use]
    pub fn with_ticket(self, ticket: &tickwire_shared::matchmake::Ticket) -> Self {
        self.with_room(ticket.room.clone())
            .with_seat_token(ticket.seat_token.clone())
    }

    /// Sets the seat token (see [`ConnectOptions::with_ticket`]).
    #[must_use]
    pub fn with_seat_token(mut self, token: impl Into<String>) -> Self {
        self.seat_token = Some(token.into());
        self
    }

    /// Sets the decode limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the handshake timeout.
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets a client-side link conditioner (see [`ConnectOptions::conditioner`]).
    #[must_use]
    pub fn with_conditioner(
        mut self,
        config: tickwire_shared::conditioner::ConditionerConfig,
        seed: u64,
    ) -> Self {
        self.conditioner = Some((config, seed));
        self
    }
}

/// A transport scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// WebSocket over TLS.
    Wss,
    /// Plain WebSocket (server development mode only).
    Ws,
    /// QUIC (quinn): a reliable stream plus datagrams for snapshots.
    Quic,
}

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The transport.
    pub scheme: Scheme,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port (default 443 for wss/quic, 80 for ws).
    pub port: u16,
    /// Path with query (WebSocket only), starting with `/`.
    pub path: String,
}

impl Endpoint {
    /// Parses `wss://host[:port][/path]`, `ws://…` or `quic://host[:port]`.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`].
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let (scheme, host, port, path) = split_url(url, |scheme| match scheme {
            "wss" => Some((Scheme::Wss, 443)),
            "ws" => Some((Scheme::Ws, 80)),
            "quic" => Some((Scheme::Quic, 443)),
            _ => None,
        })?;
        Ok(Self {
            scheme,
            host,
            port,
            path,
        })
    }

    /// The URL again, with the port made explicit.
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Wss => "wss",
            Scheme::Ws => "ws",
            Scheme::Quic => "quic",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// Splits `scheme://host[:port][/path]`; `schemes` maps the lower-case
/// scheme to a value and its default port (`None`: not accepted).
pub(crate) fn split_url<S>(
    url: &str,
    schemes: impl Fn(&str) -> Option<(S, u16)>,
) -> Result<(S, String, u16, String), ClientError> {
    let bad = |reason: &str| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host"))?;
    let (scheme, default_port) =
        schemes(scheme.to_ascii_lowercase().as_str()).ok_or_else(|| bad("unsupported scheme"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.contains('@') {
        return Err(bad("user info is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
    };
    Ok((scheme, host.to_owned(), port, path))
}

/// Any byte stream the WebSocket can run on (TCP, or TLS over TCP).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The WebSocket, over whichever stream.
pub(crate) type Ws = WebSocketStream<Pin<Box<dyn Io>>>;

/// How much tungstenite reads from the TLS stream at a time.
///
/// tungstenite zero-fills up to this much of its read buffer before every
/// read, whatever arrives, so the size is paid per received message: game
/// messages are small (a delta snapshot is tens to hundreds of bytes), and
/// a larger message is read in several steps from the plaintext rustls
/// already holds, without further system calls. Profiled in `arena-bots`
/// (500 idle bots, BENCHMARKS.md, "`arena-bots` on `ClientSession`"), the
/// zero-fill was 3.7 % of the bots' CPU with 16 KiB and 0.5 % with 4 KiB.
const WS_READ_BUFFER: usize = 4 * 1024;

/// WebSocket buffers sized for game traffic (tungstenite's defaults are
/// 128 KiB each way), with the message limit from `limits`.
fn ws_config(limits: &Limits) -> WebSocketConfig {
    let max = limits.max_server_message_bytes;
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(4 * 1024 + 2 * (limits.max_client_message_bytes + 14))
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client config for `trust`.
///
/// # Errors
/// [`ClientError::Tls`] for an unreadable PEM file or an unusable
/// certificate.
pub fn tls_config(trust: &Trust) -> Result<Arc<ClientConfig>, ClientError> {
    let tls = |e: &dyn std::fmt::Display| ClientError::Tls(e.to_string());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?;
    let config = match trust {
        Trust::InsecureDevCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth(),
        Trust::Certificate(cert) => {
            let mut roots = RootCertStore::empty();
            roots.add(cert.clone()).map_err(|e| tls(&e))?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::PemFile(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| tls(&e))?;
            }
            if roots.is_empty() {
                return Err(ClientError::Tls(format!(
                    "{}: no certificate found",
                    path.display()
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// A TCP connection to `host:port`, with TLS over it when `tls` is given.
pub(crate) async fn stream(
    host: &str,
    port: u16,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Pin<Box<dyn Io>>, ClientError> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| ClientError::Connection(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Box::pin(tcp));
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| ClientError::Tls(format!("server name {host:?}: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    Ok(Box::pin(tls))
}

/// Opens the transport for `endpoint`: TCP, TLS and the WebSocket upgrade,
/// or a QUIC connection and its stream (no tickwire handshake yet).
pub(crate) async fn open(
    endpoint: &Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    limits: &Limits,
) -> Result<Transport, ClientError> {
    let conn = |e: &dyn std::fmt::Display| ClientError::Connection(e.to_string());
    if endpoint.scheme == Scheme::Quic {
        let tls = tls.ok_or_else(|| ClientError::Tls("no TLS configuration".into()))?;
        let quic = crate::transport::open_quic(endpoint, tls, limits).await?;
        return Ok(Transport::Quic(Box::new(quic)));
    }
    if endpoint.scheme == Scheme::Wss && tls.is_none() {
        return Err(ClientError::Tls("no TLS configuration".into()));
    }
    let tls = tls.filter(|_| endpoint.scheme == Scheme::Wss);
    let stream = stream(&endpoint.host, endpoint.port, tls).await?;
    let request = endpoint.url().into_client_request().map_err(|e| conn(&e))?;
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config(limits)))
            .await
            .map_err(|e| conn(&e))?;
    Ok(Transport::Ws(Box::new(ws)))
}

/// Accepts every certificate (signatures are still checked, so the TLS
/// handshake itself is sound). See [`Trust::InsecureDevCertificate`].
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let e = Endpoint::parse("wss://127.0.0.1:8443/ws").unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port, e.path.as_str()),
            (Scheme::Wss, "127.0.0.1", 8443, "/ws")
        );
        let e = Endpoint::parse("ws://localhost").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/"));
        let e = Endpoint::parse("wss://[::1]/ws?x=1").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 443));
        assert_eq!(e.url(), "wss://[::1]:443/ws?x=1");
        assert_eq!(Endpoint::parse("quic://h:9").unwrap().scheme, Scheme::Quic);
        for bad in [
            "http://x",
            "wss://",
            "wss://h:99999/",
            "nothing",
            "wss://[::1",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(ClientError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
