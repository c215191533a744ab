//! Building the arena's browser client: compile `arena-web` (the arena's page,
//! built on the `tickwire-web` SDK) for wasm32, generate its JavaScript
//! bindings with the wasm-bindgen library, and lay out `target/www/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use wasm_bindgen_cli_support::Bindgen;

use crate::util::{self, WASM_TARGET};

/// The package and library file name of the arena's browser client.
pub(crate) const PACKAGE: &str = "arena-web";
pub(crate) const LIB_NAME: &str = "arena_web";
/// The cargo profile of a release build of the browser client (see the root
/// Cargo.toml): optimized for speed, one codegen unit, stripped.
pub(crate) const WASM_PROFILE: &str = "wasm-release";

/// Builds the browser client into `<target>/www/` and returns that folder.
///
/// `<target>/www/` holds a copy of `example-game/web/www/` (the page, its JS shell and
/// CSS) and `pkg/` with `arena_web.js` and `arena_web_bg.wasm`.
pub(crate) fn build_web(release: bool) -> Result<PathBuf> {
    let static_dir = static_dir();
    if !static_dir.is_dir() {
        bail!(
            "the browser client's static files are missing: {} does not exist; \
             it must hold index.html and the page's JS and CSS",
            static_dir.display()
        );
    }

    // Cargo's output folder is named after the profile, except for `dev`.
    let profile = if release { WASM_PROFILE } else { "debug" };
    let mut build = util::cargo();
    build.args(["build", "-p", PACKAGE, "--target", WASM_TARGET]);
    if release {
        build.args(["--profile", WASM_PROFILE]);
    }
    util::run(&mut build).with_context(|| {
        format!("could not compile {PACKAGE} for {WASM_TARGET}; fix the errors above")
    })?;

    let target = util::target_dir();
    let wasm = target
        .join(WASM_TARGET)
        .join(profile)
        .join(format!("{LIB_NAME}.wasm"));
    if !wasm.is_file() {
        bail!(
            "cargo built {PACKAGE} but {} is missing; check that example-game/web/Cargo.toml keeps crate-type \"cdylib\"",
            wasm.display()
        );
    }

    let out_dir = target.join("www");
    if out_dir.exists() {
        fs::remove_dir_all(&out_dir)
            .with_context(|| format!("could not clear the old output in {}", out_dir.display()))?;
    }
    copy_dir(&static_dir, &out_dir)?;

    let pkg_dir = out_dir.join("pkg");
    Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .context("wasm-bindgen rejected the `web` output mode")?
        // `arena_web.d.ts`: the typings of the JS API (`TickwireClient`,
        // the arena's types from tsify); tests/tests/browser_sdk.rs checks them.
        .typescript(true)
        // As `wasm-bindgen --target web` does: `init()` finds the module next to the JS.
        .omit_default_module_path(false)
        .debug(!release)
        .out_name(LIB_NAME)
        .generate(&pkg_dir)
        .with_context(|| {
            format!(
                "wasm-bindgen could not generate bindings for {}; check that {PACKAGE} depends on wasm-bindgen \
                 with the same version as xtask's wasm-bindgen-cli-support (both are pinned in the root Cargo.toml)",
                wasm.display()
            )
        })?;

    report(&out_dir, &pkg_dir, profile)?;
    Ok(out_dir)
}

/// The page's static files in the repository: `example-game/web/www/`.
pub(crate) fn static_dir() -> PathBuf {
    util::repo_root()
        .join("example-game")
        .join("web")
        .join("www")
}

/// Prints where the client went and how big its bundle is, raw and gzipped:
/// the wasm module, the JS bindings, and the two together (what a browser
/// downloads besides the page; the `.d.ts` is for editors only).
fn report(out_dir: &Path, pkg_dir: &Path, profile: &str) -> Result<()> {
    println!("web client ({profile}) built in {}", out_dir.display());
    let (mut raw, mut gz) = (0, 0);
    for name in [format!("{LIB_NAME}_bg.wasm"), format!("{LIB_NAME}.js")] {
        let path = pkg_dir.join(name);
        let bytes = fs::read(&path)
            .with_context(|| format!("could not read the generated {}", path.display()))?;
        let gzipped = gzip_len(&bytes)
            .with_context(|| format!("could not gzip {} to measure it", path.display()))?;
        println!(
            "  {}: {} ({} gzipped)",
            path.display(),
            size(bytes.len()),
            size(gzipped)
        );
        raw += bytes.len();
        gz += gzipped;
    }
    println!("  bundle (wasm + JS): {} ({} gzipped)", size(raw), size(gz));
    Ok(())
}

fn gzip_len(bytes: &[u8]) -> std::io::Result<usize> {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(bytes)?;
    Ok(gzip.finish()?.len())
}

fn size(len: usize) -> String {
    format!("{:.1} KiB", len as f64 / 1024.0)
}

/// Copies the folder `from` into `to`, recursively; `to` must not exist yet.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("could not create {}", to.display()))?;
    let entries =
        fs::read_dir(from).with_context(|| format!("could not list {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("could not list {}", from.display()))?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        if source.is_dir() {
            copy_dir(&source, &dest)?;
        } else {
            fs::copy(&source, &dest).with_context(|| {
                format!("could not copy {} to {}", source.display(), dest.display())
            })?;
        }
    }
    Ok(())
}
