//! A loopback TCP proxy with a gate: while the gate is shut, bytes in either direction wait in
//! the proxy. Put in front of moto for one broker process, or in front of a database server, it
//! pauses that process's calls at a chosen point, so a test can run a race in a chosen order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy; dropping it stops accepting (open connections end with the test runtime).
pub struct Gate {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    /// Chunks that arrived while the gate was shut and have not been passed on yet.
    waiting: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Gate {
    /// A proxy on a free loopback port to `upstream`, its gate open or shut.
    pub async fn start(upstream: SocketAddr, open: bool) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = watch::channel(open);
        let waiting = Arc::new(AtomicUsize::new(0));
        let counter = waiting.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, rx.clone(), counter.clone()));
                tokio::spawn(pipe(sr, cw, rx.clone(), counter.clone()));
            }
        });
        Gate {
            addr,
            open: tx,
            waiting,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn shut(&self) {
        self.open.send_replace(false);
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Wait until something is held at the shut gate; panics after `limit`.
    pub async fn wait_for_held(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.waiting.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "nothing reached the gate");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open.send_replace(true);
        self.accept.abort();
    }
}

/// Copy `from` to `to`, each chunk only while the gate is open.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut open: watch::Receiver<bool>,
    waiting: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !*open.borrow() {
            waiting.fetch_add(1, Ordering::SeqCst);
            let passed = open.wait_for(|o| *o).await.is_ok();
            waiting.fetch_sub(1, Ordering::SeqCst);
            if !passed {
                break;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
