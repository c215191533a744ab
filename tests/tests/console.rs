//! The fleet console's JSON API over real TLS on loopback: off without an
//! admin token, 401 without the right one, the shapes of nodes, rooms and
//! clients (with RTT and rates measured by the sessions), and its actions:
//! a kick closes one session with `Kicked` and the reason, closing a room
//! closes its sessions with `RoomClosed`, and a drain flips `/readyz`.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use tickwire_server::{AdminToken, NodeState, ServerConfig};
use tickwire_shared::{CloseCode, Hello};
use tickwire_tests::*;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(10);
const TOKEN: &str = "console-test-token-0123456789";

fn config() -> Result<ServerConfig> {
    let mut c = test_config()
        .with_tick_rate(30)
        .with_admin_token(Some(TOKEN.parse::<AdminToken>()?));
    // Sessions measure RTT with their pings.
    c.session.ping_interval = Duration::from_millis(100);
    Ok(c)
}

fn named(room: &str) -> Hello {
    let mut h = hello();
    h.room = Some(room.to_owned());
    h
}

/// One API request; `token` `None` sends no `Authorization`.
async fn api(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, Value, HttpResponse)> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let res = server.https_raw(&req).await?;
    let json = if res.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&res.body)
            .with_context(|| format!("not JSON: {:?}", String::from_utf8_lossy(&res.body)))?
    };
    Ok((res.status, json, res))
}

async fn get(server: &TestServer, path: &str) -> Result<Value> {
    let (status, json, _) = api(server, "GET", path, Some(TOKEN), None).await?;
    ensure!(status == 200, "GET {path}: {status} {json}");
    Ok(json)
}

/// Polls `GET path` until `pred` holds, with a deadline.
async fn poll(server: &TestServer, path: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    let end = Instant::now() + DEADLINE;
    loop {
        let json = get(server, path).await?;
        if pred(&json) {
            return Ok(json);
        }
        if Instant::now() >= end {
            bail!("GET {path}: condition not met within {DEADLINE:?}; last {json}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drives a client (acks, pongs) until its session is closed; returns the
/// close code and reason.
fn drive(mut client: TestClient) -> JoinHandle<Result<(CloseCode, String)>> {
    tokio::spawn(async move {
        let end = Instant::now() + 3 * DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            ensure!(
                !left.is_zero(),
                "client {} never closed",
                client.welcome.client_id
            );
            if let Received::Close(c) = client.recv(left).await? {
                return Ok((c.code, c.reason));
            }
        }
    })
}

fn room<'a>(rooms: &'a Value, name: &str) -> Option<&'a Value> {
    rooms["rooms"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
}

#[tokio::test]
async fn the_console_is_off_without_a_token() -> Result<()> {
    let server = TestServer::start(test_config()).await?;
    let (status, json, _) = api(&server, "GET", "/admin/api/rooms", Some(TOKEN), None).await?;
    ensure!(
        status == 404 && json["error"] == "console_off",
        "{status} {json}"
    );
    let (status, json, _) = api(&server, "POST", "/admin/api/drain", Some(TOKEN), None).await?;
    ensure!(
        status == 404 && json["error"] == "console_off",
        "{status} {json}"
    );
    let page = server.https_get("/admin/").await?;
    ensure!(page.status == 404, "the page is served without a token");
    ensure!(server.server.state() != NodeState::Draining);
    Ok(())
}

#[test]
fn a_short_admin_token_is_a_config_error() {
    assert!("0123456789abcde".parse::<AdminToken>().is_err());
    assert!("0123456789abcdef".parse::<AdminToken>().is_ok());
    assert!("0123456789 abcdef".parse::<AdminToken>().is_err());
}

#[tokio::test]
async fn without_the_right_token_the_api_is_401_and_requests_are_strict() -> Result<()> {
    let server = TestServer::start(config()?).await?;
    for token in [
        None,
        Some("wrong-token-wrong-token"),
        Some(&TOKEN[..TOKEN.len() - 1]),
    ] {
        for (method, path) in [
            ("GET", "/admin/api/nodes"),
            ("GET", "/admin/api/rooms"),
            ("POST", "/admin/api/drain"),
            ("GET", "/admin/api/nope"),
        ] {
            let (status, json, res) = api(&server, method, path, token, None).await?;
            ensure!(status == 401, "{method} {path} with {token:?}: {status}");
            ensure!(json["error"] == "unauthorized", "{json}");
            ensure!(
                res.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer")),
                "no Bearer challenge"
            );
        }
    }
    // Another scheme with the right token is refused too.
    let req = format!(
        "GET /admin/api/rooms HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Basic {TOKEN}\r\n\r\n"
    );
    ensure!(server.https_raw(&req).await?.status == 401);
    ensure!(
        server.server.state() == NodeState::Ready || server.server.state() == NodeState::Starting
    );

    // The page itself carries no secret and needs no token.
    let page = server.https_get("/admin/").await?;
    ensure!(page.status == 200, "page: {}", page.status);
    let html = String::from_utf8(page.body)?;
    ensure!(html.contains("tickwire fleet console") && !html.contains(TOKEN));
    ensure!(
        page.headers
            .iter()
            .any(|(n, _)| n == "content-security-policy")
    );
    ensure!(server.https_get("/admin/console.js").await?.status == 200);
    ensure!(server.https_get("/admin/other").await?.status == 404);

    // With the token: unknown endpoints, wrong methods, bad bodies.
    let t = Some(TOKEN);
    let (s, j, _) = api(&server, "GET", "/admin/api/nope", t, None).await?;
    ensure!(s == 404 && j["error"] == "not_found", "{s} {j}");
    let (s, j, res) = api(&server, "POST", "/admin/api/rooms", t, None).await?;
    ensure!(s == 405 && j["error"] == "method_not_allowed", "{s} {j}");
    ensure!(res.header("allow") == Some("GET"));
    let (s, j, _) = api(&server, "GET", "/admin/api/drain", t, None).await?;
    ensure!(s == 405, "{s} {j}");
    let (s, j, _) = api(&server, "GET", "/admin/api/rooms/none/clients", t, None).await?;
    ensure!(s == 404 && j["error"] == "room_not_found", "{s} {j}");
    let (s, j, _) = api(&server, "POST", "/admin/api/rooms/none/close", t, None).await?;
    ensure!(s == 404 && j["error"] == "room_not_found", "{s} {j}");
    let (s, j, _) = api(&server, "POST", "/admin/api/drain", t, Some(r#"{"now":1}"#)).await?;
    ensure!(s == 400 && j["error"] == "bad_request", "{s} {j}");
    let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(2000));
    let (s, j, _) = api(&server, "POST", "/admin/api/rooms/a/close", t, Some(&big)).await?;
    ensure!(s == 413 && j["error"] == "too_large", "{s} {j}");
    // Nothing above drained the node.
    ensure!(server.https_get("/readyz").await?.status == 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_clients_show_players_rtt_and_rates() -> Result<()> {
    let server = TestServer::start(config()?).await?;
    let a = server.client(named("arena")).await?;
    let b = server.client(named("arena")).await?;
    let ids = [a.welcome.client_id, b.welcome.client_id];
    let (a, b) = (drive(a), drive(b));

    let rooms = poll(&server, "/admin/api/rooms", |j| {
        room(j, "arena").is_some_and(|r| r["players"] == 2 && r["ticks"].as_u64() > Some(0))
    })
    .await?;
    ensure!(rooms["state"] == "ready", "{rooms}");
    let r = room(&rooms, "arena").context("room")?;
    for key in [
        "mode",
        "tick_p50_ms",
        "tick_p99_ms",
        "tick_max_ms",
        "overruns",
        "snapshots_per_s",
        "bytes_per_s",
    ] {
        ensure!(!r[key].is_null(), "room lacks {key}: {r}");
    }

    let clients = poll(&server, "/admin/api/rooms/arena/clients", |j| {
        j["clients"].as_array().is_some_and(|cs| {
            cs.len() == 2
                && cs.iter().all(|c| {
                    c["rtt_ms"].as_f64().is_some()
                        && c["bytes_per_s"].as_f64() > Some(0.0)
                        && c["snapshots_per_s"].as_f64() > Some(0.0)
                })
        })
    })
    .await?;
    let listed: Vec<u64> = clients["clients"]
        .as_array()
        .context("clients")?
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .collect();
    ensure!(listed == ids.map(u64::from), "{listed:?} vs {ids:?}");
    for c in clients["clients"].as_array().context("clients")? {
        ensure!(c["connected_s"].as_f64().is_some(), "{c}");
        ensure!(c["rtt_ms"].as_f64() < Some(1000.0), "loopback RTT: {c}");
    }

    let nodes = poll(&server, "/admin/api/nodes", |j| {
        j["nodes"].as_array().is_some_and(|ns| {
            ns.iter()
                .any(|n| n["self"] == true && n["players"] == 2 && n["rooms"] == 1)
        })
    })
    .await?;
    ensure!(nodes["directory_error"].is_null(), "{nodes}");
    let me = &nodes["nodes"][0];
    ensure!(me["state"] == "ready" && me["wss_url"].is_string(), "{me}");
    ensure!(
        nodes["fleet_rooms"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["name"] == "arena" && r["players"] == 2)),
        "{nodes}"
    );
    a.abort();
    b.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_closes_that_session_with_kicked_and_the_reason() -> Result<()> {
    let server = TestServer::start(config()?).await?;
    let a = server.client(named("arena")).await?;
    let b = server.client(named("arena")).await?;
    let (a_id, b_id) = (a.welcome.client_id, b.welcome.client_id);
    let (a, b) = (drive(a), drive(b));
    poll(&server, "/admin/api/rooms", |j| {
        room(j, "arena").is_some_and(|r| r["players"] == 2)
    })
    .await?;

    let t = Some(TOKEN);
    let (s, j, _) = api(
        &server,
        "POST",
        "/admin/api/rooms/arena/clients/999/kick",
        t,
        None,
    )
    .await?;
    ensure!(s == 404 && j["error"] == "client_not_found", "{s} {j}");
    let (s, j, _) = api(
        &server,
        "POST",
        "/admin/api/rooms/other/clients/1/kick",
        t,
        None,
    )
    .await?;
    ensure!(s == 404 && j["error"] == "room_not_found", "{s} {j}");
    let path = format!("/admin/api/rooms/arena/clients/{a_id}/kick");
    let (s, j, _) = api(
        &server,
        "POST",
        &path,
        t,
        Some(r#"{"reason":"toxic chat"}"#),
    )
    .await?;
    ensure!(s == 202 && j["kicked"] == true, "{s} {j}");

    let (code, reason) = tokio::time::timeout(DEADLINE, a).await??.context("a")?;
    ensure!(code == CloseCode::Kicked, "closed with {code:?}");
    ensure!(reason == "toxic chat", "reason {reason:?}");
    // The other player stays, alone in the room.
    let clients = poll(&server, "/admin/api/rooms/arena/clients", |j| {
        j["clients"].as_array().is_some_and(|cs| cs.len() == 1)
    })
    .await?;
    ensure!(clients["clients"][0]["id"] == b_id, "{clients}");
    ensure!(!b.is_finished(), "the other client was closed too");
    b.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_room_closes_its_sessions_with_room_closed() -> Result<()> {
    let server = TestServer::start(config()?).await?;
    let a = drive(server.client(named("doomed")).await?);
    let b = drive(server.client(named("doomed")).await?);
    let c = drive(server.client(named("other")).await?);
    poll(&server, "/admin/api/rooms", |j| {
        room(j, "doomed").is_some_and(|r| r["players"] == 2)
            && room(j, "other").is_some_and(|r| r["players"] == 1)
    })
    .await?;
    let body = r#"{"reason":"maintenance"}"#;
    let (s, j, _) = api(
        &server,
        "POST",
        "/admin/api/rooms/doomed/close",
        Some(TOKEN),
        Some(body),
    )
    .await?;
    ensure!(s == 202 && j["closing"] == true, "{s} {j}");
    for client in [a, b] {
        let (code, reason) = tokio::time::timeout(DEADLINE, client)
            .await??
            .context("close")?;
        ensure!(code == CloseCode::RoomClosed, "closed with {code:?}");
        ensure!(reason == "maintenance", "reason {reason:?}");
    }
    // The room goes away; the other room is untouched.
    poll(&server, "/admin/api/rooms", |j| {
        room(j, "doomed").is_none() && room(j, "other").is_some_and(|r| r["players"] == 1)
    })
    .await?;
    ensure!(!c.is_finished(), "a client of another room was closed");
    c.abort();
    Ok(())
}

#[tokio::test]
async fn drain_flips_readyz() -> Result<()> {
    let server = TestServer::start(config()?.with_drain_grace(Duration::from_secs(30))).await?;
    tokio::time::timeout(DEADLINE, server.server.status().reached(NodeState::Ready)).await?;
    // A client keeps the node draining (not stopped) while we look.
    let a = drive(server.client(named("arena")).await?);
    ensure!(server.https_get("/readyz").await?.status == 200);
    let (s, j, _) = api(&server, "POST", "/admin/api/drain", Some(TOKEN), None).await?;
    ensure!(s == 202 && j["draining"] == true, "{s} {j}");
    let end = Instant::now() + DEADLINE;
    loop {
        let res = server.https_get("/readyz").await?;
        if res.status == 503 {
            ensure!(
                res.body == b"draining",
                "{:?}",
                String::from_utf8_lossy(&res.body)
            );
            break;
        }
        ensure!(Instant::now() < end, "/readyz still {}", res.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rooms = get(&server, "/admin/api/rooms").await?;
    ensure!(rooms["state"] == "draining", "{rooms}");
    a.abort();
    Ok(())
}
