//! Building a game's browser page: compile its page crate (`arena-web`, the
//! arena's client built on the `tickwire-web` SDK; `trading-web`, the
//! trading floor's JS API) for wasm32, generate its JavaScript bindings with
//! the wasm-bindgen library, and lay out its www folder (`target/www/`,
//! `target/www-trading/`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use wasm_bindgen_cli_support::Bindgen;

use crate::util::{self, WASM_TARGET};

/// A game whose page `cargo xtask web` builds and `cargo xtask play` serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Game {
    /// The arena (`example-game/`): a Rust page on the SDK.
    Arena,
    /// The trading floor (`examples/trading/`): a JavaScript page on the JS API.
    Trading,
}

/// Where a game's page and server are.
pub(crate) struct GameFiles {
    /// The page crate (a `cdylib` for wasm32).
    pub(crate) package: &'static str,
    /// Its library file name (`pkg/<lib>.js`, `pkg/<lib>_bg.wasm`).
    pub(crate) lib_name: &'static str,
    /// The page's static files, from the repository root.
    pub(crate) static_dir: &'static str,
    /// The output folder's name in the target directory.
    pub(crate) out_dir: &'static str,
    /// The server's package and binary.
    pub(crate) server: (&'static str, &'static str),
}

impl Game {
    /// Every game, in the order `cargo xtask web` builds them.
    pub(crate) const ALL: [Game; 2] = [Game::Arena, Game::Trading];

    pub(crate) fn files(self) -> GameFiles {
        match self {
            Game::Arena => GameFiles {
                package: PACKAGE,
                lib_name: LIB_NAME,
                static_dir: "example-game/web/www",
                out_dir: "www",
                server: ("arena", "arena-server"),
            },
            Game::Trading => GameFiles {
                package: "trading-web",
                lib_name: "trading_web",
                static_dir: "examples/trading/web/www",
                out_dir: "www-trading",
                server: ("trading", "trading-server"),
            },
        }
    }
}

/// The package and library file name of the arena's browser client.
pub(crate) const PACKAGE: &str = "arena-web";
pub(crate) const LIB_NAME: &str = "arena_web";
/// The cargo profile of a release build of the browser client (see the root
/// Cargo.toml): optimized for speed, one codegen unit, stripped.
pub(crate) const WASM_PROFILE: &str = "wasm-release";

/// Builds the arena's browser client into `<target>/www/` and returns that
/// folder (see [`build_game`]).
pub(crate) fn build_web(release: bool) -> Result<PathBuf> {
    build_game(Game::Arena, release)
}

/// Builds `game`'s page into its folder in the target directory and returns
/// it: a copy of the page's static files (`example-game/web/www/` for the
/// arena) and `pkg/` with `<lib>.js`, `<lib>_bg.wasm` and `<lib>.d.ts`.
pub(crate) fn build_game(game: Game, release: bool) -> Result<PathBuf> {
    let GameFiles {
        package,
        lib_name,
        static_dir,
        out_dir,
        ..
    } = game.files();
    let static_dir = util::repo_root().join(static_dir);
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
    build.args(["build", "-p", package, "--target", WASM_TARGET]);
    if release {
        build.args(["--profile", WASM_PROFILE]);
    }
    util::run(&mut build).with_context(|| {
        format!("could not compile {package} for {WASM_TARGET}; fix the errors above")
    })?;

    let target = util::target_dir();
    let wasm = target
        .join(WASM_TARGET)
        .join(profile)
        .join(format!("{lib_name}.wasm"));
    if !wasm.is_file() {
        bail!(
            "cargo built {package} but {} is missing; check that its Cargo.toml keeps crate-type \"cdylib\"",
            wasm.display()
        );
    }

    let out_dir = target.join(out_dir);
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
        .out_name(lib_name)
        .generate(&pkg_dir)
        .with_context(|| {
            format!(
                "wasm-bindgen could not generate bindings for {}; check that {package} depends on wasm-bindgen \
                 with the same version as xtask's wasm-bindgen-cli-support (both are pinned in the root Cargo.toml)",
                wasm.display()
            )
        })?;

    report(&out_dir, &pkg_dir, lib_name, profile)?;
    Ok(out_dir)
}

/// The arena page's static files in the repository: `example-game/web/www/`.
pub(crate) fn static_dir() -> PathBuf {
    util::repo_root().join(Game::Arena.files().static_dir)
}

/// Prints where the client went and how big its bundle is, raw and gzipped:
/// the wasm module, the JS bindings, and the two together (what a browser
/// downloads besides the page; the `.d.ts` is for editors only).
fn report(out_dir: &Path, pkg_dir: &Path, lib_name: &str, profile: &str) -> Result<()> {
    println!("web client ({profile}) built in {}", out_dir.display());
    let (mut raw, mut gz) = (0, 0);
    for name in [format!("{lib_name}_bg.wasm"), format!("{lib_name}.js")] {
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
