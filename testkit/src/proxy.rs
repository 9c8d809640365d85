//! A TCP proxy in front of an API server that a test can take down and cut: how a dropped watch
//! or a network outage is shown on any backend — the embedded server or a real kube-apiserver,
//! which offers no such switch itself. TLS passes through untouched (the proxy only copies
//! bytes), so a client of a real control plane still verifies the server's certificate. Get one
//! with its client from [`TestCluster::proxied_client`](crate::TestCluster::proxied_client).

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// Forwards connections from a local port to an upstream address until dropped.
pub struct CuttableProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    /// The connections being forwarded.
    open: Arc<Mutex<Vec<AbortHandle>>>,
    /// The accept loop, while the proxy is up.
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for CuttableProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CuttableProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl CuttableProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `upstream`.
    ///
    /// # Errors
    /// When no local port can be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Self {
            addr: listener.local_addr()?,
            upstream,
            open: Arc::default(),
            accept: Mutex::new(None),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    fn serve(&self, listener: TcpListener) {
        let (open, upstream) = (self.open.clone(), self.upstream);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut open = open.lock();
                open.retain(|h| !h.is_finished());
                open.push(forward.abort_handle());
            }
        });
        *self.accept.lock() = Some(task);
    }

    /// The local address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection (both ends), as a network failure would: watches end
    /// without a final event and in-flight requests fail. New connections are accepted as
    /// before. Returns how many were open.
    pub fn cut(&self) -> usize {
        let mut open = self.open.lock();
        let n = open.iter().filter(|h| !h.is_finished()).count();
        for h in open.drain(..) {
            h.abort();
        }
        n
    }

    /// Takes the proxy down: cuts every connection and stops listening (closed when this
    /// returns), so new ones are refused until [`up`](Self::up) — a server that cannot be
    /// reached.
    pub async fn down(&self) {
        let task = self.accept.lock().take();
        if let Some(task) = task {
            task.abort();
            // Completes once the task is dropped, and its listener with it.
            let _ = task.await;
        }
        self.cut();
    }

    /// Listens again on the same address after [`down`](Self::down).
    ///
    /// # Errors
    /// When the address cannot be bound again.
    pub async fn up(&self) -> std::io::Result<()> {
        if self.accept.lock().is_some() {
            return Ok(());
        }
        self.serve(TcpListener::bind(self.addr).await?);
        Ok(())
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().take() {
            task.abort();
        }
        self.cut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An upstream that echoes what it reads.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"ping").await?;
        let mut buf = vec![0; 4];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn cut_closes_open_connections_and_down_refuses_new_ones_until_up() {
        let proxy = CuttableProxy::start(echo().await).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut conn).await.unwrap(), b"ping");
        assert_eq!(proxy.cut(), 1);
        assert!(
            round_trip(&mut conn).await.is_err(),
            "the cut connection is closed"
        );
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut again).await.unwrap(), b"ping");

        proxy.down().await;
        let refused = TcpStream::connect(proxy.addr()).await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        proxy.up().await.unwrap();
        let mut back = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut back).await.unwrap(), b"ping");
    }
}
