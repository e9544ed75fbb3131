//! The external tools and settings some tests need (helm, kubectl, a Python with msal), found
//! in one place for every test crate of the workspace (`#[path]`-included by the emulators'
//! tests). No silent skips:
//!
//! - with `CI` set, a missing tool fails the test that needs it;
//! - elsewhere the test is skipped, and says so where a reader sees it: one line
//!   `SKIPPED <test>: <why>` written straight to the process's stderr, which libtest does not
//!   capture (it captures only the `print!` family), and appended to the file named by
//!   `HDI_TEST_SKIP_LOG` when set, which `.ci/run` prints as a summary.
//!
//! `docs/testing.md` lists the tools and variables.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;

/// The running test's name (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string()
}

/// True when the suite runs in CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Says `line` where a reader of the test output sees it, whatever libtest captures, and adds
/// it to the skip log when there is one.
pub fn announce(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    if let Some(path) = std::env::var_os("HDI_TEST_SKIP_LOG").filter(|p| !p.is_empty())
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The running test cannot run here because `why`: fails it under CI, else announces the skip.
/// The caller returns (skips) after this.
pub fn skip(why: &str) {
    let test = test_name();
    assert!(
        !in_ci(),
        "{test}: {why} (CI is set: a test that cannot run fails instead of being skipped)"
    );
    announce(&format!("SKIPPED {test}: {why}"));
}

/// The running test goes on with less than it wants (e.g. without the chart's RBAC): fails
/// it under CI, else announces it.
pub fn degrade(why: &str) {
    let test = test_name();
    assert!(!in_ci(), "{test}: {why} (CI is set)");
    announce(&format!("DEGRADED {test}: {why}"));
}

/// Where the tool `name` is, without judging its absence: the path in `$var` when that is set
/// (it must exist), else the first `name` on `PATH`.
pub fn find_tool(name: &str, var: Option<&str>) -> Option<PathBuf> {
    if let Some(path) = var
        .and_then(std::env::var_os)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
    {
        assert!(
            path.is_file(),
            "{} names {}, which does not exist",
            var.unwrap_or_default(),
            path.display()
        );
        return Some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The tool `name` ([`find_tool`]), or None after [`skip`] (a failure under CI).
pub fn require_tool(name: &str, var: Option<&str>) -> Option<PathBuf> {
    let found = find_tool(name, var);
    if found.is_none() {
        let hint = var.map(|v| format!(" or set {v}")).unwrap_or_default();
        skip(&format!("{name} is not installed (put it on PATH{hint})"));
    }
    found
}

/// The value of the variable `var`, which names `what`, or None after [`skip`].
pub fn require_var(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            skip(&format!("{var} is not set ({what})"));
            None
        }
    }
}
