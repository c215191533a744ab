//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::setup;
use crate::util::{self, WASM_TARGET};
use crate::web;

/// Crates that would mean `tickwire-shared` does IO; it must stay sans-IO and wasm-safe.
const FORBIDDEN_IN_SHARED: [&str; 3] = ["tokio", "mio", "socket2"];
/// Crates `tickwire-web` (the browser SDK) must not depend on: it is generic
/// over the game (no `arena`) and runs in a browser (no native IO).
const FORBIDDEN_IN_WEB: [&str; 4] = ["arena", "tokio", "mio", "socket2"];

/// Runs the checks and prints `xtask test: N passed, N failed` as the last line.
pub(crate) fn run(quick: bool) -> ExitCode {
    let mut steps = Steps::new(if quick { 6 } else { 9 });
    let outcome = run_steps(&mut steps, quick);
    if let Err(err) = &outcome {
        eprintln!(
            "\nerror: step `{}` failed: {}",
            steps.current,
            util::chain(err)
        );
    }
    let skipped = if quick { ", 3 skipped" } else { "" };
    println!(
        "xtask test: {} passed, {} failed{skipped}",
        steps.passed,
        usize::from(outcome.is_err())
    );
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_steps(steps: &mut Steps, quick: bool) -> Result<()> {
    let mut browser = None;
    let mut redis = None;
    steps.run("prerequisites", || {
        setup::ensure_lint_components()?;
        if !quick {
            setup::ensure_wasm_target()?;
        }
        browser = Some(setup::ensure_chromium()?);
        redis = Some(setup::ensure_redis()?);
        Ok(())
    })?;
    steps.run("fmt", || {
        cargo_step(
            &["fmt", "--all", "--", "--check"],
            "code is not formatted; run `cargo fmt --all` and commit the result",
        )
    })?;
    steps.run("clippy", || {
        cargo_step(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            "clippy found problems; fix the warnings above",
        )
    })?;
    steps.run("shared stays sans-IO", check_shared_deps)?;
    steps.run("tickwire-web stays game-agnostic", check_web_deps)?;

    let mut www = None;
    let mut trading_www = None;
    if !quick {
        steps.run("wasm: tickwire-shared", || {
            cargo_step(
                &["build", "-p", "tickwire-shared", "--target", WASM_TARGET],
                "tickwire-shared must build for wasm32; fix the errors above",
            )
        })?;
        steps.run("wasm: arena rules", || {
            cargo_step(
                &[
                    "build",
                    "-p",
                    "arena",
                    "--no-default-features",
                    "--target",
                    WASM_TARGET,
                ],
                "the arena rules library must build for wasm32 without the `server` feature; \
                 fix the errors above",
            )
        })?;
        steps.run("web client", || {
            www = Some(web::build_web(true)?);
            trading_www = Some(web::build_game(web::Game::Trading, true)?);
            Ok(())
        })?;
    }

    steps.run("cargo test", || {
        let mut cmd = util::cargo();
        cmd.args(["test", "--workspace"]);
        if let Some(browser) = &browser {
            browser.export_to(&mut cmd);
        }
        if let Some(redis) = &redis {
            redis.export_to(&mut cmd);
        }
        if let Some(www) = &www {
            cmd.env("TICKWIRE_WWW_DIR", www);
        }
        if let Some(www) = &trading_www {
            cmd.env("TICKWIRE_TRADING_WWW_DIR", www);
        }
        util::run(&mut cmd).map_err(|err| err.context("tests failed; see the failures above"))
    })
}

/// Runs `cargo <args>`, adding `hint` (what to do) to the error if it fails.
fn cargo_step(args: &[&str], hint: &'static str) -> Result<()> {
    util::run(util::cargo().args(args)).map_err(|err| err.context(hint))
}

/// Fails if `cargo tree -p tickwire-shared -e normal` lists tokio, mio or socket2.
fn check_shared_deps() -> Result<()> {
    check_deps(
        "tickwire-shared",
        &FORBIDDEN_IN_SHARED,
        "it must do no IO and build for wasm32",
        "remove that dependency",
    )
}

/// `cargo tree -p tickwire-web -e normal` must not list a game (`arena`) nor
/// native IO: the SDK is generic over `GameProtocol` and runs in a browser.
fn check_web_deps() -> Result<()> {
    check_deps(
        "tickwire-web",
        &FORBIDDEN_IN_WEB,
        "the browser SDK must stay generic over the game and free of native IO",
        "move that code to the game's crate (example-game/web for the arena)",
    )
}

/// Fails if `cargo tree -p package -e normal` lists a crate of `forbidden`;
/// the error says why (`rule`) and what to do (`fix`).
fn check_deps(package: &str, forbidden: &[&str], rule: &str, fix: &str) -> Result<()> {
    let tree = util::output(
        util::cargo().args(["tree", "-p", package, "-e", "normal", "--prefix", "none"]),
    )?;
    let found = forbidden_deps(&tree, forbidden);
    if let Some(first) = found.first() {
        bail!(
            "{package} depends on {}, but {rule}; see why with \
             `cargo tree -p {package} -e normal -i {first}` and {fix}",
            found.join(", ")
        );
    }
    Ok(())
}

/// The `forbidden` crates named in `cargo tree --prefix none` output, sorted, each once.
fn forbidden_deps<'a>(tree: &'a str, forbidden: &[&str]) -> Vec<&'a str> {
    let mut found: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| forbidden.contains(name))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// Numbered, timed steps that count how many passed.
struct Steps {
    total: usize,
    started: usize,
    passed: usize,
    current: &'static str,
}

impl Steps {
    fn new(total: usize) -> Self {
        Self {
            total,
            started: 0,
            passed: 0,
            current: "",
        }
    }

    fn run(&mut self, name: &'static str, step: impl FnOnce() -> Result<()>) -> Result<()> {
        self.started += 1;
        self.current = name;
        eprintln!("\n==> [{}/{}] {name}", self.started, self.total);
        let start = Instant::now();
        step()?;
        self.passed += 1;
        eprintln!("==> {name}: ok ({:.1}s)", start.elapsed().as_secs_f64());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{FORBIDDEN_IN_SHARED, FORBIDDEN_IN_WEB, forbidden_deps};

    #[test]
    fn clean_tree_has_no_forbidden_deps() {
        let tree = "tickwire-shared v0.1.0 (/repo/shared)\nbincode v2.0.1\nserde v1.0.219\n\
                    tokio-macros v2.5.0\nmiow v0.6.0\n";
        assert!(forbidden_deps(tree, &FORBIDDEN_IN_SHARED).is_empty());
    }

    #[test]
    fn finds_each_forbidden_dep_once() {
        let tree = "tickwire-shared v0.1.0 (/repo/shared)\ntokio v1.47.1\nmio v1.0.4\n\
                    socket2 v0.6.0\ntokio v1.47.1 (*)\n";
        assert_eq!(
            forbidden_deps(tree, &FORBIDDEN_IN_SHARED),
            ["mio", "socket2", "tokio"]
        );
    }

    #[test]
    fn the_web_sdk_may_not_depend_on_a_game() {
        let tree = "tickwire-web v0.1.0 (/repo/web-client)\narena v0.1.0 (/repo/example-game)\n\
                    arena-web-helpers v0.1.0\n";
        assert_eq!(forbidden_deps(tree, &FORBIDDEN_IN_WEB), ["arena"]);
    }
}
