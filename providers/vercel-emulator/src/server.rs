//! The accept loop. It is hand-rolled (rather than `axum::serve`) so a request can drop its own
//! connection with a TCP reset, which is how connection-reset faults are injected.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// Lets a handler tear down the connection it arrived on.
#[derive(Debug, Default)]
pub(crate) struct ConnKiller {
    notify: Notify,
    reset: AtomicBool,
}

impl ConnKiller {
    pub fn kill(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// A TCP stream that closes with RST instead of FIN when its connection was killed.
struct ResettableStream {
    inner: TcpStream,
    killer: Arc<ConnKiller>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.killer.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves `router` until `shutdown` fires (or its sender is dropped), then gives open
/// connections a few seconds to finish.
pub(crate) async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let killer = Arc::new(ConnKiller::default());
                let io = TokioIo::new(ResettableStream { inner: stream, killer: killer.clone() });
                let router = router.clone();
                let ext = killer.clone();
                let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                    req.extensions_mut().insert(ext.clone());
                    router.clone().oneshot(req.map(axum::body::Body::new))
                });
                // No header-read timeout: it would be the only server-side timer, and under
                // paused tokio time it would fire spuriously while a test waits on the socket.
                let conn = hyper::server::conn::http1::Builder::new()
                    .header_read_timeout(None)
                    .serve_connection(io, service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        _ = killer.notify.notified() => {}
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}
