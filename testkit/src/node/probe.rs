//! Real TCP/UDP traffic between pods, external hosts and the host, to check what a network policy
//! (compiled to nftables) actually lets through.
//!
//! A [`Probe`] is a place traffic starts or ends: a network namespace (a pod, an external host) or
//! the host itself. Listeners echo what they receive and count it; connects and round trips report a
//! [`Reach`] that tells "allowed" (`Reached`) from "dropped" (`TimedOut`) and "rejected"
//! (`Refused`/`Unreachable`). All calls block (at most about their timeout); from async code call
//! them through `tokio::task::spawn_blocking`.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{NodeError, Result};
use super::netns::run_in;

/// The line/datagram probes send; listeners echo it back.
const PAYLOAD: &[u8] = b"kubeforge-probe\n";
/// How often a listener checks whether it was stopped.
const POLL: Duration = Duration::from_millis(10);
/// How long a UDP probe waits for an echo before resending its datagram.
const UDP_RESEND: Duration = Duration::from_millis(200);

/// What happened to a connection attempt or round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Connected (TCP) and the payload came back: traffic is allowed both ways.
    Reached,
    /// TCP RST (nothing listening, or `reject with tcp reset`) or ICMP port-unreachable (UDP).
    Refused,
    /// No answer within the timeout: dropped on the way (or the reply was).
    TimedOut,
    /// ICMP host/network unreachable or no route (e.g. an nftables `reject` with ICMP).
    Unreachable,
    /// TCP connected but the echo did not come back within the timeout.
    NoEcho,
}

impl Reach {
    /// Whether the traffic got through ([`Reach::Reached`]).
    pub fn is_reached(self) -> bool {
        self == Reach::Reached
    }
}

/// The outcome for an I/O error during a probe, if it is one of the expected network outcomes.
fn outcome_of(error: &std::io::Error) -> Option<Reach> {
    match error.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Some(Reach::TimedOut),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => Some(Reach::Refused),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Some(Reach::Unreachable),
        _ => None,
    }
}

/// Where probes run: a network namespace, or the host's own namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    netns: Option<String>,
}

impl Probe {
    /// Probes in the host's network namespace (the namespace of the calling thread).
    pub fn host() -> Self {
        Self { netns: None }
    }

    /// Probes in the named network namespace (as listed by `ip netns list`).
    pub fn in_netns(netns: impl Into<String>) -> Self {
        Self {
            netns: Some(netns.into()),
        }
    }

    /// The network namespace probes run in; `None` for the host.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    fn place(&self) -> String {
        match &self.netns {
            Some(netns) => format!("network namespace {netns}"),
            None => "the host".to_owned(),
        }
    }

    fn io_error(&self, what: String) -> impl FnOnce(std::io::Error) -> NodeError {
        let what = format!("{what} in {}", self.place());
        move |source| NodeError::Io {
            what,
            source,
            hint: "",
        }
    }

    /// Listens on TCP `port` (0 picks one, see [`Listener::port`]) on all addresses; every accepted
    /// connection gets its first line echoed back. Listening stops when the guard is dropped.
    pub fn listen_tcp(&self, port: u16) -> Result<Listener> {
        let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let socket = run_in(self.netns(), move || TcpListener::bind(addr))?
            .map_err(self.io_error(format!("listening on TCP port {port}")))?;
        socket
            .set_nonblocking(true)
            .map_err(self.io_error("making the TCP listener non-blocking".to_owned()))?;
        let local = socket
            .local_addr()
            .map_err(self.io_error("reading the TCP listener's address".to_owned()))?;
        Listener::spawn(local, "tcp", move |stop, served| {
            serve_tcp(&socket, stop, served)
        })
    }

    /// Binds UDP `port` (0 picks one) on all addresses and echoes every datagram to its sender.
    /// Stops when the guard is dropped.
    pub fn listen_udp(&self, port: u16) -> Result<Listener> {
        let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let socket = run_in(self.netns(), move || UdpSocket::bind(addr))?
            .map_err(self.io_error(format!("binding UDP port {port}")))?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(self.io_error("setting the UDP listener's timeout".to_owned()))?;
        let local = socket
            .local_addr()
            .map_err(self.io_error("reading the UDP listener's address".to_owned()))?;
        Listener::spawn(local, "udp", move |stop, served| {
            serve_udp(&socket, stop, served)
        })
    }

    /// Connects to `ip:port` over TCP, sends a line and waits for its echo, all within `timeout`.
    /// Errors only when the probe itself cannot run; network outcomes are in the [`Reach`].
    pub fn connect_tcp(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<Reach> {
        let target = SocketAddr::from((ip, port));
        run_in(self.netns(), move || tcp_roundtrip(target, timeout))?
            .map_err(self.io_error(format!("probing TCP {target}")))
    }

    /// Sends a datagram to `ip:port` (resending every 200ms) until its echo comes back or `timeout`
    /// passes. Errors only when the probe itself cannot run.
    pub fn udp_roundtrip(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<Reach> {
        let target = SocketAddr::from((ip, port));
        run_in(self.netns(), move || {
            let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
            socket.connect(target)?;
            Ok::<_, std::io::Error>(socket)
        })?
        .and_then(|socket| udp_roundtrip(&socket, timeout))
        .map_err(self.io_error(format!("probing UDP {target}")))
    }
}

/// The TCP probe proper (runs in the probe's namespace).
fn tcp_roundtrip(target: SocketAddr, timeout: Duration) -> std::io::Result<Reach> {
    let deadline = Instant::now() + timeout;
    let stream = match TcpStream::connect_timeout(&target, timeout) {
        Ok(stream) => stream,
        Err(error) => return outcome_of(&error).ok_or(error),
    };
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(remaining))?;
    stream.set_write_timeout(Some(remaining))?;
    let mut line = Vec::new();
    let echoed = (&stream)
        .write_all(PAYLOAD)
        .and_then(|()| BufReader::new(&stream).read_until(b'\n', &mut line));
    match echoed {
        Ok(_) if line == PAYLOAD => Ok(Reach::Reached),
        Ok(_) => Ok(Reach::NoEcho),
        Err(error) if outcome_of(&error).is_some() => Ok(Reach::NoEcho),
        Err(error) => Err(error),
    }
}

/// The UDP probe proper, on a socket connected to the target (so ICMP errors are reported).
fn udp_roundtrip(socket: &UdpSocket, timeout: Duration) -> std::io::Result<Reach> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Reach::TimedOut);
        }
        let sent = socket.send(PAYLOAD).and_then(|_| {
            socket.set_read_timeout(Some(remaining.min(UDP_RESEND)))?;
            socket.recv(&mut buf)
        });
        match sent {
            Ok(len) if &buf[..len] == PAYLOAD => return Ok(Reach::Reached),
            Ok(_) => {}
            // A signal (e.g. SIGCHLD from tokio's process driver) interrupts timed socket calls.
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => match outcome_of(&error) {
                Some(Reach::TimedOut) => {}
                Some(outcome) => return Ok(outcome),
                None => return Err(error),
            },
        }
    }
}

/// Accepts connections until stopped; each gets its first line echoed on its own thread.
fn serve_tcp(socket: &TcpListener, stop: &AtomicBool, served: &AtomicUsize) {
    while !stop.load(Ordering::Relaxed) {
        match socket.accept() {
            Ok((stream, _)) => {
                served.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || echo_line(&stream));
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(error) => {
                tracing::debug!(%error, "probe listener: accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Echoes one line on `stream` (a probe's payload), giving up after a few seconds.
fn echo_line(stream: &TcpStream) {
    let mut line = Vec::new();
    let result = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(5))))
        .and_then(|()| BufReader::new(stream).read_until(b'\n', &mut line))
        .and_then(|_| (&*stream).write_all(&line));
    if let Err(error) = result {
        tracing::debug!(%error, "probe listener: echo failed");
    }
}

/// Echoes datagrams until stopped.
fn serve_udp(socket: &UdpSocket, stop: &AtomicBool, served: &AtomicUsize) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                served.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = socket.send_to(&buf[..len], from) {
                    tracing::debug!(%error, "probe listener: UDP echo failed");
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(error) => tracing::debug!(%error, "probe listener: recv failed"),
        }
    }
}

/// A running echo listener (from [`Probe::listen_tcp`] / [`Probe::listen_udp`]); dropping it stops
/// the listener and closes its socket.
#[derive(Debug)]
pub struct Listener {
    local: SocketAddr,
    protocol: &'static str,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn spawn(
        local: SocketAddr,
        protocol: &'static str,
        serve: impl FnOnce(&AtomicBool, &AtomicUsize) + Send + 'static,
    ) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (stop_flag, count) = (stop.clone(), served.clone());
        let thread = std::thread::Builder::new()
            .name(format!("probe-{protocol}-{}", local.port()))
            .spawn(move || serve(&stop_flag, &count))
            .map_err(|source| NodeError::Io {
                what: format!(
                    "starting the {protocol} probe listener thread for port {}",
                    local.port()
                ),
                source,
                hint: "",
            })?;
        Ok(Self {
            local,
            protocol,
            stop,
            served,
            thread: Some(thread),
        })
    }

    /// The port listened on (useful after listening on port 0).
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// How many connections (TCP) or datagrams (UDP) arrived so far: lets a test assert that a
    /// dropped probe really never reached the server.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// "tcp" or "udp".
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
