//! The child processes of a control plane: spawning them from one long-lived thread through
//! `setpriv --pdeathsig KILL` (so they die with the test process), killing and reaping them on
//! drop, reading the tail of their logs for errors, picking free loopback ports, and the temp
//! dirs they run in (created with an owner file; stale ones of dead processes removed). Used by
//! the boot sequence (`boot`) and by [`ControlPlane`](super::ControlPlane) to stop its children.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{ControlPlaneError, Result, io_err};

const DIR_PREFIX: &str = "kubeforge-control-plane-";
const OWNER_FILE: &str = "owner.pid";

/// Removes temp dirs of control planes whose process is gone (the shared plane is never
/// dropped, so its dir outlives it). Dirs without an owner file, or of live processes, stay.
pub(super) fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_ours {
            continue;
        }
        let Ok(owner) = fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        let Ok(pid) = owner.trim().parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// A fresh temp dir for a control plane, holding an owner file with this process's id.
pub(super) fn owned_temp_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .map_err(io_err("creating a temp dir for the control plane"))?;
    // Lets a later start recognise this dir as stale once this process is gone.
    fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
        .map_err(io_err("writing the control plane's owner file"))?;
    Ok(dir)
}

/// Asks the kernel for a free loopback port. Another process may take it before our child binds
/// it; the child then exits with "address in use" and the error says so.
pub(super) fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(io_err("finding a free loopback port"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("finding a free loopback port"))?
        .port();
    Ok(port)
}

/// The last `lines` lines of a child's log, for error messages.
pub(super) fn tail(log: &Path, lines: usize) -> String {
    let Ok(file) = fs::File::open(log) else {
        return String::from("(no log)");
    };
    let mut last: VecDeque<String> = VecDeque::with_capacity(lines);
    for line in BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok)
    {
        if last.len() == lines {
            last.pop_front();
        }
        last.push_back(line);
    }
    Vec::from(last).join("\n")
}

/// A child process we started; killed and reaped on drop.
pub(super) struct Supervised {
    pub(super) name: &'static str,
    pub(super) child: Child,
    pub(super) log: PathBuf,
}

impl Supervised {
    pub(super) fn kill(&mut self) {
        // SIGKILL: the data dir is thrown away, so a graceful shutdown buys nothing but time.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns the children from one dedicated thread that lives as long as the control plane.
///
/// The kernel's parent-death signal fires when the *thread* that forked the child exits, not
/// the process. Tests run on short-lived threads (and tokio reaps idle blocking threads), so
/// forking from the caller's thread could kill a control plane shared between tests early.
pub(super) struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
    pdeathsig: Option<PathBuf>,
}

impl Spawner {
    pub(super) fn new() -> Spawner {
        let (requests, inbox) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("kubeforge-control-plane".to_string())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    let _ = reply.send(command.spawn());
                }
            })
            .ok();
        let pdeathsig = find_setpriv();
        if pdeathsig.is_none() {
            tracing::warn!(
                "setpriv (util-linux) is not on PATH: etcd and kube-apiserver are still killed when \
                 the ControlPlane is dropped, but would outlive a test process that aborts"
            );
        }
        Spawner {
            requests: Some(requests),
            thread,
            pdeathsig,
        }
    }

    pub(super) fn spawn(
        &self,
        name: &'static str,
        binary: &Path,
        args: &[String],
        dir: &Path,
    ) -> Result<Supervised> {
        let log = dir.join(format!("{name}.log"));
        let out = fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("opening {}", log.display())))?;
        let mut command = match &self.pdeathsig {
            Some(setpriv) => {
                let mut command = Command::new(setpriv);
                command.arg("--pdeathsig").arg("KILL").arg("--").arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let what = format!("starting {name} ({})", binary.display());
        let spawn_failed = |message: &str| ControlPlaneError::Io {
            what: what.clone(),
            source: std::io::Error::other(message.to_string()),
        };
        let (reply, answer) = mpsc::channel();
        let requests = self
            .requests
            .as_ref()
            .ok_or_else(|| spawn_failed("spawner stopped"))?;
        requests
            .send((command, reply))
            .map_err(|_| spawn_failed("the spawner thread is gone"))?;
        let child = answer
            .recv()
            .map_err(|_| spawn_failed("the spawner thread is gone"))?
            .map_err(io_err(what.clone()))?;
        Ok(Supervised { name, child, log })
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn find_setpriv() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("setpriv"))
        .find(|candidate| candidate.is_file())
}
