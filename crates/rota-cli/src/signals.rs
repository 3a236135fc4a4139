//! The daemon's signals: SIGTERM/SIGINT (stop) and SIGHUP (reload), each
//! listened to from the daemon's start, so a signal that arrives while it
//! starts (applying, say) waits instead of killing the process or being
//! lost.

/// SIGTERM or SIGINT (Ctrl-C), listened to from the daemon's start.
pub(crate) struct StopSignal {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl StopSignal {
    pub(crate) fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                streams: [SignalKind::terminate(), SignalKind::interrupt()]
                    .into_iter()
                    .filter_map(|k| signal(k).ok())
                    .collect(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the first (or an earlier, pending) signal.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.streams.is_empty() {
                std::future::pending::<()>().await;
            }
            let waits = self.streams.iter_mut().map(|s| Box::pin(s.recv()));
            let _ = futures_select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves when the first of `futures` does.
#[cfg(unix)]
async fn futures_select_all<F: Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(move |cx| {
        for f in &mut futures {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}

/// SIGHUP, listened to from the daemon's start (never resolves elsewhere).
pub(crate) struct HangupSignal {
    #[cfg(unix)]
    stream: Option<tokio::signal::unix::Signal>,
}

impl HangupSignal {
    pub(crate) fn new() -> Self {
        #[cfg(unix)]
        {
            Self {
                stream: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.stream {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}
