//! What the generator's end-to-end tests share: running `kubeforge` and `cargo` in a generated
//! project (with the workspace's target directory, so only the generated crates build), the
//! embedded API server as `kubeforge serve`, and snapshots of a project's files.
#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The CLI under test.
pub const KUBEFORGE: &str = env!("CARGO_BIN_EXE_kubeforge");

/// The target directory this test binary was built in: `<target>/debug/deps/<test>`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/debug/deps")
        .to_path_buf()
}

/// `kubeforge args…` in `dir`, with the shared target directory; returns the output whatever
/// the exit status.
pub fn kubeforge_output(dir: &Path, args: &[&str]) -> Output {
    Command::new(KUBEFORGE)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("KUBEFORGE_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("kubeforge runs")
}

/// `kubeforge args…` in `dir`, which must succeed; returns stdout and stderr.
pub fn kubeforge(dir: &Path, args: &[&str]) -> String {
    let out = kubeforge_output(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubeforge {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// `kubeforge args…` in `dir`, which must fail; returns stderr.
pub fn kubeforge_fails(dir: &Path, args: &[&str]) -> String {
    let out = kubeforge_output(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kubeforge {} should have failed; stdout:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// `cargo args…` in `dir` with the shared target directory; panics with cargo's output on
/// failure. Cargo's progress goes to the test's stderr.
pub fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo {} failed in {}",
        args.join(" "),
        dir.display()
    );
}

/// Every file under `dir` (but `target/`) with its contents.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            for entry in std::fs::read_dir(&path).expect("readable dir").flatten() {
                stack.push(entry.path());
            }
        } else {
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
            files.insert(rel, std::fs::read(&path).expect("readable file"));
        }
    }
    files
}

/// `kubeforge serve` on a free port, stopped (SIGKILL) when dropped.
pub struct Serve {
    child: Child,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Serve {
    /// Starts it, writing the kubeconfig into `dir`, and waits for its banner.
    pub fn start(dir: &Path) -> Serve {
        Serve::start_with(dir, &[])
    }

    /// [`Serve::start`] with more arguments (e.g. `--data-dir`).
    pub fn start_with(dir: &Path, extra: &[&std::ffi::OsStr]) -> Serve {
        let kubeconfig = dir.join("serve.kubeconfig");
        let mut child = Command::new(KUBEFORGE)
            .args(["serve", "--port", "0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubeforge serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            if line.expect("banner line").contains("Ctrl-C") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Serve { child, kubeconfig }
    }
}

impl Serve {
    /// A kube client for it.
    pub async fn client(&self) -> kube::Client {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("its kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("a config from its kubeconfig");
        kube::Client::try_from(config).expect("a client")
    }
}

/// SIGKILL: the server gets no chance to clean up.
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 200 ms until it holds; panics after `timeout` naming `what`.
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
