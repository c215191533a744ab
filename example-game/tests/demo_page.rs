//! `arena-server` started without `--static-dir` still answers the URL it
//! prints: `/` is a page that names the command that builds and serves the
//! browser client, not a 404.

use std::io::{Read, Write};
use std::net::TcpStream;

mod server_process;

use server_process::{DEADLINE, until_line};

/// `GET path` over plain HTTP/1.1 on `port`: the whole response as text.
fn get(port: u16, path: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    tcp.read_to_string(&mut response)
        .expect("read the response");
    response
}

#[test]
fn the_printed_url_serves_a_page_that_says_what_to_run() {
    // Plain HTTP keeps the test free of a TLS client; the routing is the same.
    let (_server, lines) =
        server_process::start(&["--addr", "127.0.0.1:0", "--plain", "--no-quic"]);
    let mut seen = Vec::new();
    let open = until_line(&lines, &mut seen, "open  http://");
    let port: u16 = open
        .trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {open:?}"));
    until_line(&lines, &mut seen, "cargo xtask play");

    let response = get(port, "/");
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "GET / answered {status}"
    );
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{response}"
    );
    assert!(response.contains("cargo xtask play"), "{response}");
    assert!(response.contains("--static-dir"), "{response}");
    // Other paths are still 404: the page is a fallback for `/` only.
    let missing = get(port, "/pkg/arena_web_bg.wasm");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}
