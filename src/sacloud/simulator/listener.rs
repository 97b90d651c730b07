//! A TCP listener whose connections a handler can cut, so a "dropped connection" fault closes
//! the socket without a single byte of answer: the client sees the connection closed before a
//! response, as it would when a load balancer or the network fails mid-call.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Accepts TCP connections and hands each a [`ConnHandle`].
pub(crate) struct CuttableListener {
    inner: TcpListener,
}

impl CuttableListener {
    pub async fn bind(addr: SocketAddr) -> io::Result<CuttableListener> {
        Ok(CuttableListener {
            inner: TcpListener::bind(addr).await?,
        })
    }
}

/// The connection a request came on; available to handlers as `ConnectInfo<ConnHandle>`.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub remote: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Make every later read or write on this connection fail, so the server closes it
    /// without writing the answer it is about to send.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

/// A TCP stream that fails once its [`ConnHandle`] was cut.
pub(crate) struct CuttableStream {
    inner: TcpStream,
    cut: Arc<AtomicBool>,
}

impl CuttableStream {
    fn check(&self) -> io::Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut by a fault",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (CuttableStream, ConnHandle) {
        loop {
            match self.inner.accept().await {
                Ok((stream, remote)) => {
                    // Small JSON answers: do not let Nagle delay them.
                    let _ = stream.set_nodelay(true);
                    let cut = Arc::new(AtomicBool::new(false));
                    let handle = ConnHandle {
                        remote,
                        cut: cut.clone(),
                    };
                    return (CuttableStream { inner: stream, cut }, handle);
                }
                // Out of file descriptors and the like: wait a little, as axum's own listener does.
                Err(e) => {
                    tracing::debug!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<ConnHandle> {
        Ok(ConnHandle {
            remote: self.inner.local_addr()?,
            cut: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.remote_addr().clone()
    }
}
