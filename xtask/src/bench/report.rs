//! The report around the tables: number formats, verdicts, the machine
//! header, and the generated region of `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::util;

/// The markers around the generated region of `BENCHMARKS.md`.
pub(crate) const BEGIN: &str = "<!-- xtask bench: begin -->";
pub(crate) const END: &str = "<!-- xtask bench: end -->";

/// `-` for a missing value, else the value with `d` decimals.
fn fmt(v: Option<f64>, d: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.d$}"),
        _ => "–".to_owned(),
    }
}

pub(crate) fn f0(v: Option<f64>) -> String {
    fmt(v, 0)
}

pub(crate) fn f1(v: Option<f64>) -> String {
    fmt(v, 1)
}

pub(crate) fn f2(v: Option<f64>) -> String {
    fmt(v, 2)
}

/// KiB as MiB with one decimal.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// A target's verdict, with what was measured.
pub(crate) enum Verdict {
    Met(String),
    NotMet(String),
    NotMeasured(String),
}

impl Verdict {
    pub(crate) fn from_bool(ok: bool, result: String) -> Self {
        if ok {
            Self::Met(result)
        } else {
            Self::NotMet(result)
        }
    }

    fn parts(&self) -> (&str, &str) {
        match self {
            Self::Met(r) => ("**met**", r),
            Self::NotMet(r) => ("**not met**", r),
            Self::NotMeasured(r) => ("not measured", r),
        }
    }

    /// A `| target | result | verdict |` row.
    pub(crate) fn row(&self, target: &str) -> String {
        let (verdict, result) = self.parts();
        let result = result.lines().next().unwrap_or("").replace('|', "\\|");
        format!("| {target} | {result} | {verdict} |\n")
    }

    pub(crate) fn to_json(&self, target: &str) -> Value {
        let (verdict, result) = self.parts();
        json!({ "target": target, "result": result, "verdict": verdict.trim_matches('*') })
    }
}

/// The machine and the build, as the section's header states them.
pub(crate) struct Machine {
    pub(crate) nproc: String,
    pub(crate) cpu: String,
    pub(crate) ram: String,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) commit: String,
    pub(crate) date: String,
    pub(crate) load: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn out(cmd: &mut Command) -> String {
    util::output(cmd)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The first `key : value` of `/proc/cpuinfo`-style text.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

impl Machine {
    pub(crate) fn probe() -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        let ram = field(&meminfo, "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or("unknown".into(), |kib| {
                format!("{:.1} GiB", kib / 1024.0 / 1024.0)
            });
        let dirty =
            !out(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]))
                .is_empty();
        Self {
            nproc: out(&mut Command::new("nproc")),
            cpu: field(&cpuinfo, "model name")
                .unwrap_or("unknown")
                .to_owned(),
            ram,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc: out(Command::new("rustc").arg("--version")),
            commit: format!(
                "{}{}",
                out(Command::new("git").args(["rev-parse", "--short", "HEAD"])),
                if dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            ),
            date: out(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
            load: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({ "nproc": self.nproc, "cpu": self.cpu, "ram": self.ram, "kernel": self.kernel,
                "rustc": self.rustc, "commit": self.commit, "date": self.date, "loadavg_start": self.load })
    }
}

/// The generated section: header, then the tables.
pub(crate) fn section(
    m: &Machine,
    command: &str,
    quick: bool,
    taskset: bool,
    load_end: &str,
    results: &std::path::Path,
    tables: &[String],
) -> String {
    let mut s = String::new();
    s.push_str("## Capacity report (`cargo xtask bench`)\n\n");
    if quick {
        s.push_str("**Quick (smoke) run, not for quoting**: short windows and small counts, only to check that the tool works.\n\n");
    }
    let _ = writeln!(
        s,
        "Generated by `cargo xtask bench`; everything between the markers is rewritten by each full run.\n\n\
         - **Machine:** `nproc` = {}, CPU `{}`, {} RAM, Linux {}\n\
         - **Build:** `{}`, release profile, commit `{}`\n\
         - **Date:** {}; load average {} at the start, {} at the end\n\
         - **Command:** `{}`\n\
         - **Pinning:** {}\n\
         - Raw results: `{}` (and the logs of every run beside it).\n",
        m.nproc,
        m.cpu,
        m.ram,
        m.kernel,
        m.rustc,
        m.commit,
        m.date,
        m.load,
        load_end,
        command,
        if taskset {
            "`taskset`: the server on CPU 0, the bots on CPU 1 (bots' CPU is reported beside the server's)"
        } else {
            "none (`taskset` is not installed): server and bots share every CPU"
        },
        results
            .strip_prefix(util::repo_root())
            .unwrap_or(results)
            .display(),
    );
    for t in tables {
        s.push_str(t);
        s.push('\n');
    }
    s
}

/// `doc` with the region between the markers replaced by `section`; the
/// markers and the region are appended when absent.
pub(crate) fn replace_region(doc: &str, section: &str) -> Result<String> {
    let region = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            Ok(format!("{}{region}{}", &doc[..b], &doc[e + END.len()..]))
        }
        (None, None) => Ok(format!("{}\n\n{region}\n", doc.trim_end())),
        _ => bail!("BENCHMARKS.md has a broken `xtask bench` marker pair; fix it by hand"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_is_replaced_and_the_rest_kept() {
        let doc = format!("# B\n\nintro\n\n{BEGIN}\nold\n{END}\n\n## After\n");
        let new = replace_region(&doc, "new\n").unwrap();
        assert_eq!(
            new,
            format!("# B\n\nintro\n\n{BEGIN}\nnew\n{END}\n\n## After\n")
        );
        // Idempotent.
        assert_eq!(replace_region(&new, "new").unwrap(), new);
    }

    #[test]
    fn a_missing_region_is_appended_and_a_broken_one_refused() {
        let new = replace_region("# B\n", "x").unwrap();
        assert_eq!(new, format!("# B\n\n{BEGIN}\nx\n{END}\n"));
        assert!(replace_region(&format!("{END}\n{BEGIN}"), "x").is_err());
        assert!(replace_region(&format!("a {BEGIN} b"), "x").is_err());
    }

    #[test]
    fn formats_and_verdicts() {
        assert_eq!(f1(Some(2.25)), "2.2");
        assert_eq!(f0(None), "–");
        assert_eq!(f2(Some(f64::NAN)), "–");
        assert_eq!(mib(1536), "1.5");
        let v = Verdict::from_bool(false, "9 µs".into());
        assert_eq!(v.row("≤ 8 µs"), "| ≤ 8 µs | 9 µs | **not met** |\n");
        assert_eq!(v.to_json("t")["verdict"], "not met");
        assert_eq!(
            field("model name\t: AMD EPYC\nflags : x", "model name"),
            Some("AMD EPYC")
        );
    }
}
