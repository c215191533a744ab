//! A minimal Chrome DevTools Protocol driver for the browser end-to-end test:
//! Debian's Chromium, headless, driven over its DevTools WebSocket with
//! tokio-tungstenite (already a dependency) and serde_json. No browser
//! download: the binary comes from `TICKWIRE_CHROMIUM` or `/usr/bin/chromium`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The flags the project runs Chromium with (see DEVELOPERS.md).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A headless Chromium with one DevTools connection.
pub struct Browser {
    child: Child,
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
    _profile: TempDir,
}

/// A page (a target with a flattened session).
#[derive(Clone, Debug)]
pub struct Page {
    pub session: String,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where Chromium is, or a precise error saying how to install it.
pub fn chromium_path() -> Result<PathBuf> {
    let path = std::env::var_os("TICKWIRE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !path.exists() {
        bail!(
            "Chromium not found at {}: install it with `apt-get install -y chromium chromium-driver` \
             (cargo xtask test does this when run as root)",
            path.display()
        );
    }
    Ok(path)
}

/// How to start Chromium beyond [`CHROMIUM_FLAGS`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LaunchOptions {
    /// Leave QUIC on (drop `--disable-quic`): WebTransport needs it. The
    /// other tests keep it off, as DEVELOPERS.md says.
    pub quic: bool,
}

impl Browser {
    /// Starts Chromium trusting the certificate whose SPKI SHA-256 is `spki`.
    pub async fn launch(spki: &str) -> Result<Self> {
        Self::launch_with(spki, LaunchOptions::default()).await
    }

    /// As [`Browser::launch`], with `options`.
    pub async fn launch_with(spki: &str, options: LaunchOptions) -> Result<Self> {
        let profile = TempDir::new("tickwire-chromium")?;
        let mut cmd = Command::new(chromium_path()?);
        cmd.args(
            CHROMIUM_FLAGS
                .iter()
                .filter(|f| !(options.quic && **f == "--disable-quic")),
        )
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(format!("--ignore-certificate-errors-spki-list={spki}"))
        .arg("--remote-debugging-port=0")
        .arg("--window-size=1280,800")
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd.spawn().context("starting chromium")?;
        let port_file = profile.0.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(20);
        let contents = loop {
            if let Ok(s) = std::fs::read_to_string(&port_file)
                && s.lines().count() >= 2
            {
                break s;
            }
            if Instant::now() > deadline {
                bail!("chromium did not open its DevTools port within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut lines = contents.lines();
        let port = lines.next().unwrap_or_default().trim();
        let path = lines.next().unwrap_or_default().trim();
        let url = format!("ws://127.0.0.1:{port}{path}");
        let tcp = TcpStream::connect(format!("127.0.0.1:{port}")).await?;
        let (ws, _) = tokio_tungstenite::client_async(url, tcp)
            .await
            .context("connecting to chromium's DevTools")?;
        Ok(Self {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        })
    }

    /// Sends a command and waits (at most 30 s) for its result.
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::Text(msg.to_string().into())).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .with_context(|| format!("no answer to {method}"))?
                .ok_or_else(|| anyhow!("DevTools connection closed"))??;
            let Message::Text(text) = next else { continue };
            let v: Value = serde_json::from_str(&text)?;
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    bail!("{method} failed: {err}");
                }
                return Ok(v["result"].clone());
            }
        }
    }

    /// Opens a page at `url` and attaches to it.
    pub async fn open(&mut self, url: &str) -> Result<Page> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": url }))
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or_else(|| anyhow!("no targetId"))?
            .to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no sessionId"))?
            .to_owned();
        let page = Page { session };
        self.call(Some(&page.session), "Page.enable", json!({}))
            .await?;
        self.call(Some(&page.session), "Runtime.enable", json!({}))
            .await?;
        Ok(page)
    }

    /// Evaluates a JavaScript expression (awaiting promises) and returns its value.
    pub async fn eval(&mut self, page: &Page, expr: &str) -> Result<Value> {
        let r = self
            .call(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": expr, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            bail!("javascript exception in `{expr}`: {ex}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expr` until it is truthy, with a deadline.
    pub async fn wait_for(&mut self, page: &Page, expr: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(page, expr).await;
            if let Ok(v) = &v
                && !(v.is_null() || v == &json!(false) || v == &json!(0) || v == &json!(""))
            {
                return Ok(v.clone());
            }
            if Instant::now() > deadline {
                bail!("`{expr}` did not become true within {timeout:?} (last: {v:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A key event: `kind` is "keyDown" or "keyUp"; `key` like "d", `code` like "KeyD".
    pub async fn key(
        &mut self,
        page: &Page,
        kind: &str,
        key: &str,
        code: &str,
        key_code: u32,
    ) -> Result<()> {
        self.call(
            Some(&page.session),
            "Input.dispatchKeyEvent",
            json!({ "type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code }),
        )
        .await
        .map(drop)
    }

    /// A mouse event at page coordinates: "mouseMoved", "mousePressed", "mouseReleased".
    pub async fn mouse(&mut self, page: &Page, kind: &str, x: f64, y: f64) -> Result<()> {
        self.call(
            Some(&page.session),
            "Input.dispatchMouseEvent",
            json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
        )
        .await
        .map(drop)
    }

    /// A PNG screenshot of the page, written to `path`.
    pub async fn screenshot(&mut self, page: &Page, path: &Path) -> Result<()> {
        let r = self
            .call(
                Some(&page.session),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .await?;
        let data = r["data"]
            .as_str()
            .ok_or_else(|| anyhow!("no screenshot data"))?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
