//! Running child processes with errors that say what failed and what to do.

use std::env;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::{Context, Result, bail};

/// The wasm target the shared crate, the arena rules and the browser client build for.
pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The workspace root: the folder above this crate's manifest.
pub(crate) fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target"),
    }
}

/// A `cargo` command run from the workspace root, using the same cargo that runs xtask.
pub(crate) fn cargo() -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root());
    cmd
}

/// The command line as a person would type it, for logs and error messages.
/// Cargo is shown as `cargo` even when it runs through its full path.
pub(crate) fn display(cmd: &Command) -> String {
    let program = cmd.get_program();
    let program = if Some(program) == env::var_os("CARGO").as_deref() {
        "cargo".to_owned()
    } else {
        program.to_string_lossy().into_owned()
    };
    let mut line = program;
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` with inherited stdio and fails if it cannot start or exits unsuccessfully.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    eprintln!("$ {line}");
    let status = cmd.status().map_err(|err| spawn_error(&line, err))?;
    if !status.success() {
        bail!("`{line}` failed ({})", describe(status));
    }
    Ok(())
}

/// Runs `cmd`, capturing its output, and returns its stdout.
/// On failure the error carries the command's stderr.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let line = display(cmd);
    let out = cmd.output().map_err(|err| spawn_error(&line, err))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}):\n{}",
            describe(out.status),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout)
        .with_context(|| format!("`{line}` printed output that is not UTF-8"))
}

/// Whether `err` from spawning a command means the program is not installed.
pub(crate) fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == ErrorKind::NotFound)
}

/// The first executable file called `name` in a folder on `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("{status}"),
    }
}

fn spawn_error(line: &str, err: std::io::Error) -> anyhow::Error {
    let program = line.split(' ').next().unwrap_or(line).to_owned();
    let hint = if err.kind() == ErrorKind::NotFound {
        format!("; is `{program}` installed and on PATH?")
    } else {
        String::new()
    };
    anyhow::Error::new(err).context(format!("could not start `{line}`{hint}"))
}

/// Formats an error and its causes, one per line, without a backtrace.
pub(crate) fn chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str("\n  caused by: ");
        text.push_str(&cause.to_string());
    }
    text
}
