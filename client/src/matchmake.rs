//! Matchmaking: `POST /matchmake` to any node of a fleet, then connect to
//! the node it names with the seat token it gives (docs/PROTOCOL.md §13).
//!
//! ```no_run
//! use tickwire_client::matchmake::{MatchmakeRequest, matchmake};
//! use tickwire_client::{Client, ConnectOptions, Trust};
//! # use tickwire_shared::GameProtocol;
//! # struct Dots;
//! # impl GameProtocol for Dots {
//! #     const NAME: &'static str = "dots";
//! #     const VERSION: u32 = 1;
//! #     type Input = (i8, i8);
//! #     type EntityState = (i32, i32);
//! #     type Event = String; type Message = ();
//! # }
//! # async fn run() -> Result<(), tickwire_client::ClientError> {
//! let trust = Trust::PemFile("fleet-ca.pem".into());
//! let request = MatchmakeRequest::mode("ffa").with_auth("ada");
//! let ticket = matchmake("https://play.example.com", &trust, &request).await?;
//! let client = Client::<Dots>::connect_ticket(&ticket, ConnectOptions::new(trust)).await?;
//! println!("playing in {} on {}", client.welcome().room, ticket.node);
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

use crate::connect::{self, Trust};
use crate::error::ClientError;

/// Largest matchmaker answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// The whole request (connect, TLS, request, answer) must finish within this.
const MATCHMAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub use tickwire_shared::matchmake::{ErrorBody, MatchmakeRequest, Ticket};

/// Asks the matchmaker at `url` (`https://host[:port]`, or `http://` for a
/// plain development node; the path defaults to `/matchmake`) for a seat.
///
/// # Errors
/// [`ClientError::Matchmake`] with the HTTP status, the JSON error code and
/// `Retry-After` when the matchmaker refused; [`ClientError::InvalidUrl`],
/// [`ClientError::Connection`], [`ClientError::Tls`],
/// [`ClientError::Timeout`], or [`ClientError::Protocol`] for an answer
/// that is not the documented JSON.
pub async fn matchmake(
    url: &str,
    trust: &Trust,
    request: &MatchmakeRequest,
) -> Result<Ticket, ClientError> {
    let (tls, host, port, path) = connect::split_url(url, |scheme| match scheme {
        "https" => Some((true, 443)),
        "http" => Some((false, 80)),
        _ => None,
    })?;
    let path = if path == "/" {
        "/matchmake".to_owned()
    } else {
        path
    };
    let tls = if tls {
        Some(connect::tls_config(trust)?)
    } else {
        None
    };
    let body = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let run = async {
        let stream = connect::stream(&host, port, tls.as_ref()).await?;
        let conn = |e: hyper::Error| ClientError::Connection(e.to_string());
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(conn)?;
        let driver = tokio::spawn(connection);
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, authority)
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let res = sender.send_request(req).await.map_err(conn)?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = Limited::new(res.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| ClientError::Connection(format!("reading the answer: {e}")))?
            .to_bytes();
        driver.abort();
        if status == 200 {
            return serde_json::from_slice::<Ticket>(&bytes).map_err(|e| {
                ClientError::Protocol(format!("matchmaker answer is not a ticket: {e}"))
            });
        }
        let (error, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.error, b.message),
            Err(_) => (
                "http".to_owned(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err(ClientError::Matchmake {
            status,
            error,
            message,
            retry_after,
        })
    };
    tokio::time::timeout(MATCHMAKE_TIMEOUT, run)
        .await
        .map_err(|_| ClientError::Timeout("matchmaking"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_serialize_as_documented() {
        let r = MatchmakeRequest::mode("ffa").with_auth("ada");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"mode":"ffa","auth":"ada"}"#
        );
        let r = MatchmakeRequest::resume("lobby", tickwire_shared::ResumeToken([0xab; 16]));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!(r#"{{"room":"lobby","resume":"{}"}}"#, "ab".repeat(16))
        );
    }

    #[tokio::test]
    async fn bad_urls_are_refused_before_connecting() {
        for url in ["wss://x/", "ftp://x", "https://", "https://h:99999"] {
            let got = matchmake(
                url,
                &Trust::InsecureDevCertificate,
                &MatchmakeRequest::mode(""),
            )
            .await;
            assert!(
                matches!(got, Err(ClientError::InvalidUrl { .. })),
                "{url}: {got:?}"
            );
        }
    }
}
