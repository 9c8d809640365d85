//! Running a closure inside a named network namespace, without `unsafe` and without moving the
//! calling thread: a dedicated thread `setns(2)`es into `/run/netns/<name>` (which moves only that
//! thread) and runs the closure there. Sockets keep the namespace they were created in, so a socket
//! created by the closure can be used from any thread afterwards.

use std::fs::File;
use std::os::fd::AsFd;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use super::error::{NodeError, Result};

/// Runs `f` inside network namespace `netns` (a name from `ip netns list`), or on the calling
/// thread in the host's namespace if `netns` is `None`. Blocks until `f` returns.
pub(crate) fn run_in<R, F>(netns: Option<&str>, f: F) -> Result<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let Some(netns) = netns else {
        return Ok(f());
    };
    let path = format!("/run/netns/{netns}");
    let place = format!("network namespace {netns}");
    let thread = std::thread::Builder::new()
        .name(format!("netns-{netns}"))
        .spawn(move || -> Result<R> {
            let enter_error = |source: std::io::Error| NodeError::Io {
                what: format!("entering network namespace {path}"),
                source,
                hint: " — the namespace must exist (was its pod removed or its node dropped?) and entering it needs root (CAP_SYS_ADMIN)",
            };
            let file = File::open(&path).map_err(enter_error)?;
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|errno| enter_error(errno.into()))?;
            Ok(f())
        })
        .map_err(|source| NodeError::Io {
            what: format!("starting a thread for {place}"),
            source,
            hint: "",
        })?;
    thread
        .join()
        .map_err(|_| NodeError::ProbePanicked { place })?
}
