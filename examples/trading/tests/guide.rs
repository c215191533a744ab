//! docs/GUIDE.md cannot drift from this game: every code block of the
//! guide is tagged with the file it comes from (`<!-- file: PATH -->` on
//! the line before its fence) and must appear in that file verbatim, as
//! whole lines. The files are this crate's, its page's and its tests, which
//! the workspace compiles, lints and tests. Code blocks (Rust, TOML,
//! JavaScript, HTML, CSS) without a tag fail too; only `sh` and `text`
//! blocks may stand alone.

use std::path::{Path, PathBuf};

/// One fenced block of the guide.
#[derive(Debug)]
struct Block {
    /// Its line in the guide (1-based), for messages.
    line: usize,
    /// The fence's language.
    lang: String,
    /// The file it is tagged with, if any.
    file: Option<String>,
    /// Its text, without the fences.
    text: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fenced blocks of `markdown`, with the `<!-- file: … -->` tag of the
/// line just before each fence.
fn blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let file = i
            .checked_sub(1)
            .and_then(|p| lines[p].strip_prefix("<!-- file: "))
            .and_then(|rest| rest.strip_suffix(" -->"))
            .map(str::to_owned);
        let end = (i + 1..lines.len())
            .find(|&k| lines[k] == "```")
            .unwrap_or_else(|| panic!("GUIDE.md:{}: the block never closes", i + 1));
        out.push(Block {
            line: i + 1,
            lang: lang.to_owned(),
            file,
            text: lines[i + 1..end].join("\n"),
        });
        i = end + 1;
    }
    out
}

/// The problems of `guide`'s blocks against the files they name.
fn check(guide: &str, read: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for b in blocks(guide) {
        let at = format!("GUIDE.md:{} ({} block)", b.line, b.lang);
        let Some(file) = &b.file else {
            if !matches!(b.lang.as_str(), "sh" | "text") {
                problems.push(format!("{at}: no `<!-- file: … -->` tag"));
            }
            continue;
        };
        if !file.starts_with("examples/trading/") {
            problems.push(format!("{at}: {file} is not a file of the trading game"));
            continue;
        }
        match read(file) {
            None => problems.push(format!("{at}: {file} does not exist")),
            Some(source) => {
                let source = format!("\n{}\n", source.replace("\r\n", "\n"));
                if b.text.trim().is_empty() || !source.contains(&format!("\n{}\n", b.text)) {
                    problems.push(format!("{at}: not verbatim in {file}:\n{}", b.text));
                }
            }
        }
    }
    problems
}

fn read_repo_file(path: &str) -> Option<String> {
    std::fs::read_to_string(repo_root().join(path)).ok()
}

#[test]
fn every_block_of_the_guide_is_in_its_file() {
    let guide = std::fs::read_to_string(repo_root().join("docs/GUIDE.md")).unwrap();
    let tagged = blocks(&guide).iter().filter(|b| b.file.is_some()).count();
    assert!(
        tagged >= 20,
        "only {tagged} tagged blocks: is the parser broken?"
    );
    let problems = check(&guide, read_repo_file);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_check_catches_a_changed_snippet() {
    let file = |_: &str| Some("fn a() {\n    let x = 1;\n}\n".to_owned());
    let ok = "<!-- file: examples/trading/src/lib.rs -->\n```rust\n    let x = 1;\n```\n";
    assert!(check(ok, file).is_empty());
    for bad in [
        // A changed line, a partial line, an untagged code block, a file
        // from elsewhere.
        "<!-- file: examples/trading/src/lib.rs -->\n```rust\n    let x = 2;\n```\n",
        "<!-- file: examples/trading/src/lib.rs -->\n```rust\nlet x = 1;\n```\n",
        "```rust\nfn a() {}\n```\n",
        "<!-- file: server/src/lib.rs -->\n```rust\n    let x = 1;\n```\n",
    ] {
        assert_eq!(check(bad, file).len(), 1, "not caught: {bad}");
    }
    assert_eq!(
        check("```sh\ncargo xtask play --game trading\n```\n", file).len(),
        0
    );
}
