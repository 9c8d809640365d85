//! Running `ip` and `nft` and writing sysctls: the only places the local node changes the host.
//! Every failure becomes a [`NodeError`] carrying the command line, its stderr and a fix hint.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{NodeError, Result};

/// Directories searched after `$PATH`: `ip` and `nft` live in /usr/sbin, which is often not on a
/// non-root (or non-login) `$PATH`.
const SBIN: [&str; 2] = ["/usr/sbin", "/sbin"];

/// Finds `program` on `$PATH` or in the sbin directories; falls back to the bare name (so the
/// spawn error names it).
fn locate(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}

/// The Debian package that provides `program`, for "install it" hints.
fn package_of(program: &str) -> &'static str {
    match program {
        "nft" => "nftables",
        _ => "iproute2",
    }
}

/// A hint for a failed command, from its stderr.
fn hint_for(stderr: &str) -> &'static str {
    if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        " — this needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); run the tests as root"
    } else if stderr.contains("File exists") {
        " — an object with this name or address already exists (a leftover of a killed test run? LocalNode::sweep_stale removes those)"
    } else {
        ""
    }
}

/// Runs `program args…`, feeding `input` on stdin if given; returns stdout, or an error naming `what`.
pub(crate) fn run(program: &str, args: &[&str], input: Option<&str>, what: &str) -> Result<String> {
    let mut command = Command::new(locate(program));
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |source| NodeError::Spawn {
        what: what.to_owned(),
        program: program.to_owned(),
        package: package_of(program),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error (the program exited early) shows up in its exit status and stderr below.
        let _ = stdin.write_all(input.as_bytes());
    }
    let output = child.wait_with_output().map_err(spawn_error)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(NodeError::Command {
        what: what.to_owned(),
        command: format!("{program} {}", args.join(" ")),
        status: output.status.to_string(),
        hint: hint_for(&stderr),
        stderr,
    })
}

/// Runs `ip args…`.
pub(crate) fn ip(args: &[&str], what: &str) -> Result<String> {
    run("ip", args, None, what)
}

/// Runs a teardown command, treating "it is already gone" as success; returns other failures.
pub(crate) fn ip_gone_ok(args: &[&str], what: &str) -> Result<()> {
    match ip(args, what) {
        Err(NodeError::Command { stderr, .. }) if is_already_gone(&stderr) => Ok(()),
        other => other.map(drop),
    }
}

/// Whether a failed delete's stderr says the object does not exist.
pub(crate) fn is_already_gone(stderr: &str) -> bool {
    [
        "Cannot find device",
        "No such file or directory",
        "does not exist",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

/// Writes `1` to a sysctl file unless it already holds `1`.
fn enable_sysctl(path: &str, why: &'static str) -> Result<()> {
    let io_error = |source| NodeError::Io {
        what: format!("enabling {path}"),
        source,
        hint: why,
    };
    if std::fs::read_to_string(path).map_err(io_error)?.trim() == "1" {
        return Ok(());
    }
    tracing::info!(path, "local node: enabling sysctl");
    std::fs::write(path, "1").map_err(io_error)
}

/// Makes the host route between node bridges and external hosts (`ip_forward`) and makes bridged
/// IPv4 traffic visible to `inet`-family nftables chains (`bridge-nf-call-iptables`, see the
/// module docs). Both are host-wide and left on afterwards.
pub(crate) fn enable_forwarding() -> Result<()> {
    enable_sysctl(
        "/proc/sys/net/ipv4/ip_forward",
        " — pods reach other nodes and external hosts through the host, which must forward IPv4; this needs root",
    )?;
    let bridge_nf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if Path::new(bridge_nf).exists() {
        enable_sysctl(
            bridge_nf,
            " — needed so nftables inet chains see pod-to-pod traffic on a bridge; this needs root",
        )
    } else {
        tracing::warn!(
            "local node: {bridge_nf} is missing (br_netfilter not loaded: `modprobe br_netfilter`); \
             nftables inet chains will not see pod-to-pod traffic on the same bridge"
        );
        Ok(())
    }
}

/// Why local nodes cannot be used here (not root, `ip` missing), or `None` if they can. Tests call
/// this first and skip with the reason instead of failing on machines without the privileges.
pub fn unavailable_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned));
    if euid.as_deref() != Some("0") {
        return Some("local nodes need root (network namespaces, veths, bridges)".to_owned());
    }
    if let Err(error) = ip(&["-V"], "checking for iproute2") {
        return Some(error.to_string());
    }
    None
}
