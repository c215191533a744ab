//! The in-memory table of static files the server's origin serves: read
//! once at startup ([`StaticFiles::load`]) and answered only from memory, so
//! no request path ever reaches the file system.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use bytes::Bytes;

use super::HttpError;

pub(super) struct StaticFile {
    pub(super) body: Bytes,
    pub(super) content_type: &'static str,
}

/// An immutable in-memory table of static files, keyed by URL path
/// (`/index.html`, `/pkg/game_bg.wasm`).
///
/// Requests are answered from this table only; nothing is read from disk
/// after [`StaticFiles::load`].
#[derive(Default)]
pub struct StaticFiles {
    files: HashMap<String, StaticFile>,
    total_bytes: u64,
}

impl fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFiles")
            .field("files", &self.files.len())
            .field("total_bytes", &self.total_bytes)
            .finish()
    }
}

impl StaticFiles {
    /// An empty table: every static request gets 404.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Recursively reads every regular file under `dir` into memory.
    ///
    /// A file at `dir/a/b.js` is served as `/a/b.js`. Entries whose name
    /// starts with `.` are skipped, as are symbolic links to directories
    /// (which could form cycles). A symbolic link to a file is followed only
    /// when its target, with every link resolved, lies inside `dir`; a link
    /// out of the static root is skipped with a warning.
    /// Fails if anything cannot be read, a name is not UTF-8, or the files
    /// together exceed `max_total_bytes` (checked before each file is read).
    ///
    /// This does blocking file IO; call it at startup, before or outside the
    /// async runtime's worker tasks (for example via
    /// `tokio::task::spawn_blocking`).
    pub fn load(dir: &Path, max_total_bytes: u64) -> Result<Self, HttpError> {
        let read_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HttpError::StaticRead { path, source }
        };
        let meta = fs::metadata(dir).map_err(read_err(dir))?;
        if !meta.is_dir() {
            return Err(HttpError::StaticNotADirectory {
                path: dir.to_path_buf(),
            });
        }

        // Links are checked against the root with every link resolved.
        let root = fs::canonicalize(dir).map_err(read_err(dir))?;
        let mut table = Self::empty();
        let mut pending = vec![(dir.to_path_buf(), String::new())];
        while let Some((fs_dir, url_prefix)) = pending.pop() {
            for entry in fs::read_dir(&fs_dir).map_err(read_err(&fs_dir))? {
                let entry = entry.map_err(read_err(&fs_dir))?;
                let path = entry.path();
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    return Err(HttpError::StaticNonUtf8Name { path });
                };
                if name.starts_with('.') {
                    continue;
                }
                let url = format!("{url_prefix}/{name}");
                let file_type = entry.file_type().map_err(read_err(&path))?;
                let (len, source) = if file_type.is_dir() {
                    pending.push((path, url));
                    continue;
                } else if file_type.is_file() {
                    let len = entry.metadata().map_err(read_err(&path))?.len();
                    (len, path.clone())
                } else if file_type.is_symlink() {
                    let target = fs::canonicalize(&path).map_err(read_err(&path))?;
                    if !target.starts_with(&root) {
                        tracing::warn!(
                            path = %path.display(),
                            target = %target.display(),
                            "skipping symlink that leads out of the static root"
                        );
                        continue;
                    }
                    let meta = fs::metadata(&target).map_err(read_err(&path))?;
                    if !meta.is_file() {
                        tracing::warn!(path = %path.display(), "skipping symlink that is not a file");
                        continue;
                    }
                    (meta.len(), target)
                } else {
                    tracing::warn!(path = %path.display(), "skipping special file");
                    continue;
                };

                let remaining = max_total_bytes.saturating_sub(table.total_bytes);
                let too_large = |seen: u64| HttpError::StaticTooLarge {
                    path: path.clone(),
                    total_bytes: table.total_bytes.saturating_add(seen),
                    max_total_bytes,
                };
                if len > remaining {
                    return Err(too_large(len));
                }
                // The file may grow between `metadata` and the read, so the
                // read itself is bounded as well.
                let mut body = Vec::new();
                fs::File::open(&source)
                    .and_then(|f| f.take(remaining.saturating_add(1)).read_to_end(&mut body))
                    .map_err(read_err(&path))?;
                let read = body.len() as u64;
                if read > remaining {
                    return Err(too_large(read));
                }
                table.total_bytes += read;
                table.files.insert(
                    url.clone(),
                    StaticFile {
                        content_type: content_type_for(&url),
                        body: Bytes::from(body),
                    },
                );
            }
        }
        tracing::info!(
            dir = %dir.display(),
            files = table.files.len(),
            bytes = table.total_bytes,
            "loaded static files"
        );
        Ok(table)
    }

    /// Adds (or replaces) one file under `url_path` (a leading `/` is added
    /// if missing), for assets embedded in the binary. The content type
    /// comes from the extension, as for loaded files. Not counted against
    /// any cap.
    pub fn insert(&mut self, url_path: &str, body: impl Into<Bytes>) {
        let url = if url_path.starts_with('/') {
            url_path.to_owned()
        } else {
            format!("/{url_path}")
        };
        let body = body.into();
        let new_len = body.len() as u64;
        let file = StaticFile {
            content_type: content_type_for(&url),
            body,
        };
        if let Some(old) = self.files.insert(url, file) {
            self.total_bytes -= old.body.len() as u64;
        }
        self.total_bytes += new_len;
    }

    /// Number of files in the table.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the table has no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Total bytes of all file bodies.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Whether a file is served at exactly `url_path` (no `/` → `/index.html`
    /// mapping, no percent-decoding).
    pub fn contains(&self, url_path: &str) -> bool {
        self.files.contains_key(url_path)
    }

    pub(super) fn lookup(&self, request_path: &str) -> Option<&StaticFile> {
        let decoded = percent_decode(request_path)?;
        if decoded.ends_with('/') {
            self.files.get(&format!("{decoded}index.html"))
        } else {
            self.files.get(&decoded)
        }
    }
}

/// The `Content-Type` for a URL path, by extension (case-insensitive).
fn content_type_for(url_path: &str) -> &'static str {
    let file_name = url_path.rsplit('/').next().unwrap_or(url_path);
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn content_types() {
        for (path, ty) in [
            ("/a.wasm", "application/wasm"),
            ("/a.js", "text/javascript; charset=utf-8"),
            ("/a.MJS", "text/javascript; charset=utf-8"),
            ("/a.html", "text/html; charset=utf-8"),
            ("/a.css", "text/css; charset=utf-8"),
            ("/a.json", "application/json"),
            ("/a.png", "image/png"),
            ("/a.svg", "image/svg+xml"),
            ("/favicon.ico", "image/x-icon"),
            ("/a.txt", "text/plain; charset=utf-8"),
            ("/dir.v2/noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type_for(path), ty, "{path}");
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        crate::test_util::temp_dir(&format!("http-{tag}"))
    }

    #[test]
    fn load_reads_tree_and_enforces_cap() {
        let dir = temp_dir("load");
        fs::create_dir_all(dir.join("pkg/deep")).unwrap();
        fs::write(dir.join("index.html"), "<html>").unwrap();
        fs::write(dir.join("pkg/game_bg.wasm"), WASM).unwrap();
        fs::write(dir.join("pkg/deep/a b.js"), "x").unwrap();
        fs::write(dir.join(".hidden"), "secret").unwrap();

        let files = StaticFiles::load(&dir, 1024).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files.total_bytes(), 6 + 8 + 1);
        assert!(files.contains("/index.html"));
        assert!(files.contains("/pkg/game_bg.wasm"));
        assert!(files.contains("/pkg/deep/a b.js"));
        assert!(!files.contains("/.hidden"));
        assert!(files.lookup("/pkg/deep/a%20b.js").is_some());
        assert_eq!(
            files.lookup("/pkg/game_bg.wasm").map(|f| f.content_type),
            Some("application/wasm")
        );

        match StaticFiles::load(&dir, 10) {
            Err(HttpError::StaticTooLarge {
                max_total_bytes: 10,
                total_bytes,
                ..
            }) => assert!(total_bytes > 10),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            StaticFiles::load(&dir.join("index.html"), 1024),
            Err(HttpError::StaticNotADirectory { .. })
        ));
        assert!(matches!(
            StaticFiles::load(&dir.join("missing"), 1024),
            Err(HttpError::StaticRead { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
