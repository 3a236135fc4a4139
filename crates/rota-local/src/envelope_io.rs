//! The error envelope for requests the HTTP library refuses itself.
//!
//! hyper answers a request it cannot parse (a bad request line, method or
//! header, a URI or header section past its limits) on its own, before any
//! of our code runs, with a bare status and an empty body. Every refusal of
//! the local cloud carries Alibaba's envelope (`RequestId`, `HostId`,
//! `Code`, `Message`, `Recommend`) instead, so [`EnvelopeIo`] watches what
//! is written to the connection: a response head with status 400, 414 or
//! 431 and `content-length: 0` — which only that automatic answer has, as
//! every answer of ours has a body — is replaced by the same status with
//! the envelope. Anything else passes through untouched (a prefix compare
//! per write). hyper closes the connection after such an answer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::dispatch::new_request_id;

/// A connection whose automatic parse-error answers get the envelope.
pub(crate) struct EnvelopeIo<T> {
    inner: T,
    host_id: Arc<str>,
    /// A replacement being written: bytes, how many are written, and the
    /// length of the write it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> EnvelopeIo<T> {
    pub(crate) fn new(inner: T, host_id: Arc<str>) -> Self {
        Self {
            inner,
            host_id,
            pending: None,
        }
    }
}

/// The replacement for `head` when it is hyper's automatic answer.
fn replacement(head: &[u8], host_id: &str) -> Option<Vec<u8>> {
    const PREFIX: &[u8] = b"HTTP/1.1 ";
    if head.len() < PREFIX.len() + 3 || !head.starts_with(PREFIX) || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let status = &head[PREFIX.len()..PREFIX.len() + 3];
    let (code, reason, message) = match status {
        b"400" => (
            "MalformedRequest",
            "Bad Request",
            "The request could not be parsed as HTTP/1.1 (request line, method, URI or a header).",
        ),
        b"414" => (
            "InvalidParameter.UriTooLong",
            "URI Too Long",
            "The request URI is too long; send the parameters in a form body (POST).",
        ),
        b"431" => (
            "InvalidParameter.HeadersTooLarge",
            "Request Header Fields Too Large",
            "The request's header section is too large.",
        ),
        _ => return None,
    };
    let lower = head.to_ascii_lowercase();
    if !lower.windows(19).any(|w| w == b"content-length: 0\r\n") {
        return None;
    }
    let request_id = new_request_id();
    let body = json!({
        "RequestId": request_id,
        "HostId": host_id,
        "Code": code,
        "Message": message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}&product=Kms&requestId={request_id}"),
    })
    .to_string();
    let status = std::str::from_utf8(status).unwrap_or("400");
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json;charset=utf-8\r\nx-acs-request-id: {request_id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: AsyncWrite + Unpin> EnvelopeIo<T> {
    /// Writes what is pending; `Ready(Ok(n))` is the length of the write
    /// it replaced once all of it is out.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, done, _)) = &mut self.pending {
            if *done == bytes.len() {
                let (_, _, stands_for) = self.pending.take().unwrap_or_default();
                return Poll::Ready(Ok(stands_for));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EnvelopeIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EnvelopeIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match replacement(buf, &this.host_id) {
                Some(bytes) => this.pending = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        this.poll_pending(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let first = bufs.iter().find(|b| !b.is_empty());
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            match first
                .filter(|b| b.len() == total)
                .and_then(|b| replacement(b, &this.host_id))
            {
                Some(bytes) => this.pending = Some((bytes, 0, total)),
                None => return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            }
        }
        this.poll_pending(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn only_hypers_bodiless_refusals_are_replaced() {
        let auto = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 16 Jun 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(auto, "h").expect("replaced")).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(
            out.contains("\"Code\":\"InvalidParameter.HeadersTooLarge\""),
            "{out}"
        );
        assert!(out.contains("\"RequestId\""), "{out}");
        // An answer with a body, a success, or a partial head: untouched.
        assert!(
            replacement(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
                "h"
            )
            .is_none()
        );
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "h").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n", "h").is_none());
        assert!(replacement(b"{\"a\":1}", "h").is_none());
    }
}
