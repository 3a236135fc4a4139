//! `cargo xtask bench load`: `rota local serve` under load and hostile
//! clients, beside two bare servers answering the same body: one written
//! on hyper alone (the stricter baseline: what the HTTP layer rota is
//! built on costs by itself) and the minimal axum server the hardening
//! issue measured against (`Router`, one route, `axum::serve`).
//!
//! Each server runs in a child process (this binary again), so that its CPU
//! time, resident memory and open descriptors are its own; the load
//! generator writes V1-signed GetSecretValue requests over raw keep-alive
//! connections (a fresh nonce and signature each) and reads the answers.
//!
//! `ROTA_LOAD_PHASE=tls` instead compares rota over HTTP and over HTTPS
//! (see [`drive_tls`]).
//!
//! Phases, for the three servers: concurrency 16 and 64 for
//! `ROTA_BENCH_SECS` (default 20) each, run as `ROTA_BENCH_ROUNDS`
//! (default 5) rounds that alternate between the servers, so that all see
//! the same machine (a shared VM's steal time moves the absolute figures
//! by a third from one minute to the next) — requests per second, p50,
//! p99, worst, errors and server CPU per request over all rounds, and the
//! median of the rounds' CPU ratios (rota / hyper, rota / axum); then
//! 1,000 keep-alive connections for `ROTA_LOAD_SECS` (default 60). Then,
//! against rota and the hyper server (axum's `serve` has no header or
//! body timeout to show): 200 clients that stall inside their
//! headers and 200 inside their bodies (the servers' header and body
//! timeouts are 2 s here), a 1 MiB header section and a 200 MB
//! `content-length` (refused before being buffered). RSS and open
//! descriptors of the server are printed before and after.

// A benchmark's job is to print its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rota_kms::SecretString;
use rota_local::Clock as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

// The allocator the rota binary runs with, so the server child measures
// what `rota local serve` does (the bare server runs on it too).
#[global_allocator]
static ALLOC: Counting = Counting(mimalloc::MiMalloc);

/// mimalloc, counting allocations (one relaxed add each) so that the
/// in-process phase can print how many a request costs.
struct Counting(mimalloc::MiMalloc);

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed unchanged to mimalloc's own `GlobalAlloc`.
// (A bench's allocator wrapper: a global allocator is unsafe by nature.)
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { self.0.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { self.0.realloc(ptr, layout, new) }
    }
}

const KEY_ID: &str = "LTAIloadbenchkey0001";
const KEY_SECRET: &str = "load-bench-secret";
const SECRET: &str = "app/load";

fn main() {
    match std::env::var("ROTA_LOAD_SERVE").as_deref() {
        Ok("rota") => serve_rota(None),
        Ok("rota-tls") => {
            serve_rota(std::env::var_os("ROTA_LOAD_TLS_DIR").map(std::path::PathBuf::from))
        }
        Ok("hyper") => serve_bare(),
        Ok("axum") => serve_axum(),
        _ if std::env::var("ROTA_LOAD_PHASE").as_deref() == Ok("parts") => parts(),
        _ if std::env::var("ROTA_LOAD_PHASE").as_deref() == Ok("tls") => drive_tls(),
        _ if std::env::var("ROTA_LOAD_PHASE").as_deref() == Ok("in-process") => {
            println!("{}", in_process_best_of(5, 50_000));
        }
        _ => drive(),
    }
}

// ------------------------------------------------------------------ servers

fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Prints the port, then serves until standard input closes.
fn announce_and_wait(port: u16) {
    println!("PORT {port}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// The local cloud both the served and the in-process measurements use:
/// the bench's key and one secret.
async fn bench_cloud(dir: &std::path::Path) -> rota_local::LocalCloud {
    let cloud = rota_local::LocalCloud::options(dir)
        .root_key(KEY_ID, KEY_SECRET)
        .automatic_rotation(false)
        .open()
        .await
        .expect("local cloud");
    let kms = rota_kms::KmsClient::new(Arc::new(cloud.clone()));
    kms.send(&rota_kms::kms::CreateSecret {
        secret_name: SECRET.into(),
        secret_data: SecretString::new("load-bench-value-0123456789"),
        version_id: "v1".into(),
        ..Default::default()
    })
    .await
    .expect("secret");
    cloud
}

/// `rota local serve` as the bench runs it; over TLS with the local CA
/// in `tls_dir` when given.
fn serve_rota(tls_dir: Option<std::path::PathBuf>) {
    let rt = child_runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let cloud = bench_cloud(dir.path()).await;
        let server = rota_local::server::serve(
            cloud,
            rota_local::server::ServerConfig {
                max_connections: 4096,
                header_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_secs(2),
                tls: tls_dir.map(|d| {
                    let now = rota_local::Clock::now(&rota_local::SystemClock::default());
                    rota_local::tls::local_ca(&d, &[], now).expect("local CA").0
                }),
                ..Default::default()
            },
        )
        .await
        .expect("serve");
        let port = server.local_addr().port();
        tokio::task::spawn_blocking(move || announce_and_wait(port))
            .await
            .expect("wait");
        server.shutdown().await;
    });
}

/// Serves one connection as the bare server: reads each request's body,
/// answers `body`.
async fn serve_bare_connection<I>(io: I, body: bytes::Bytes, header_timeout: Option<Duration>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(true);
    match header_timeout {
        Some(t) => http.header_read_timeout(t),
        None => http.half_close(true),
    };
    let conn = http.serve_connection(
        TokioIo::new(io),
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let body = body.clone();
            async move {
                use http_body_util::BodyExt as _;
                // Read the body as a server must, then answer.
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), req.into_body().collect()).await;
                let mut r = hyper::Response::new(Full::new(body));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json;charset=utf-8"),
                );
                Ok::<_, std::convert::Infallible>(r)
            }
        }),
    );
    let _ = conn.await;
}

fn serve_bare() {
    let body = bytes::Bytes::from(std::env::var("ROTA_LOAD_BODY").unwrap_or_default());
    let rt = child_runtime();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_bare_connection(
                    stream,
                    body.clone(),
                    Some(Duration::from_secs(2)),
                ));
            }
        });
        tokio::task::spawn_blocking(move || announce_and_wait(port))
            .await
            .expect("wait");
    });
}

/// The minimal axum server: one route answering the body for GET and
/// POST (reading the request's body first, as the hyper one does), served
/// by `axum::serve` with `TCP_NODELAY` set as rota and the hyper server
/// set it.
fn serve_axum() {
    use axum::serve::ListenerExt as _;
    let body = bytes::Bytes::from(std::env::var("ROTA_LOAD_BODY").unwrap_or_default());
    let rt = child_runtime();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let listener = listener.tap_io(|s| {
            let _ = s.set_nodelay(true);
        });
        async fn answer(
            axum::extract::State(body): axum::extract::State<bytes::Bytes>,
            _request: bytes::Bytes,
        ) -> impl axum::response::IntoResponse {
            (
                [(http::header::CONTENT_TYPE, "application/json;charset=utf-8")],
                body,
            )
        }
        let app = axum::Router::new()
            .route("/", axum::routing::get(answer).post(answer))
            .with_state(body);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        tokio::task::spawn_blocking(move || announce_and_wait(port))
            .await
            .expect("wait");
    });
}

// ------------------------------------------------------------- in process

/// This thread's CPU time in seconds (the scheduler's own count, which
/// leaves out time the machine's other tenants took: wall time on a
/// shared VM moves by a third from one minute to the next).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// CPU per request of each server's request path without sockets: `n`
/// pipelined requests through one in-memory connection, on one thread. What it leaves out (the
/// kernel's TCP work, the same for both) is most of the bare server's
/// cost, so this ratio is far above the served one; it shows where rota's
/// own work goes down or up between changes.
fn in_process(n: usize) -> InProcess {
    // Requests are written before any is timed; each server runs on a
    // thread of its own (named, for a profiler's eyes).
    let warm: Vec<u8> = (0..n / 5).flat_map(|_| request(0)).collect();
    let fresh: Vec<u8> = (0..n).flat_map(|_| request(0)).collect();
    let on_thread = |name: &str, f: Box<dyn FnOnce() -> (f64, u64, String) + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .expect("thread")
            .join()
            .expect("in-process run")
    };
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let (warm, fresh) = (Arc::new(warm), Arc::new(fresh));
    let (w, f) = (warm.clone(), fresh.clone());
    let (rota, rota_allocs, body) = on_thread(
        "rota-in-process",
        Box::new(move || {
            let dir = tempfile::tempdir().expect("temp dir");
            runtime().block_on(async {
                let cloud = bench_cloud(dir.path()).await;
                let warm = rota_local::server::exchange(&cloud, &w).await;
                let t = thread_cpu();
                let a = ALLOCATIONS.load(Ordering::Relaxed);
                let out = rota_local::server::exchange(&cloud, &f).await;
                let secs = thread_cpu() - t;
                let allocs = ALLOCATIONS.load(Ordering::Relaxed) - a;
                let answered = out.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
                assert_eq!(
                    answered, n,
                    "rota in process: {answered} of {n} answered 200"
                );
                // The bare server answers rota's answer (the first one's body).
                let warm = String::from_utf8_lossy(&warm);
                let body = warm
                    .split_once("\r\n\r\n")
                    .and_then(|(_, rest)| rest.split("HTTP/1.1 ").next())
                    .unwrap_or_default()
                    .to_owned();
                (secs, allocs, body)
            })
        }),
    );
    let (bare, bare_allocs, _) = on_thread(
        "bare-in-process",
        Box::new(move || {
            runtime().block_on(async {
                let body = bytes::Bytes::from(body);
                let t = thread_cpu();
                let a = ALLOCATIONS.load(Ordering::Relaxed);
                let (client, server) = tokio::io::duplex(64 * 1024);
                let serving = tokio::spawn(serve_bare_connection(server, body, None));
                let (mut reader, mut writer) = tokio::io::split(client);
                let mut out = Vec::with_capacity(fresh.len());
                let write = async {
                    let _ = writer.write_all(&fresh).await;
                    let _ = writer.shutdown().await;
                };
                let read = reader.read_to_end(&mut out);
                let _ = tokio::join!(write, read);
                let secs = thread_cpu() - t;
                let allocs = ALLOCATIONS.load(Ordering::Relaxed) - a;
                serving.abort();
                let answered = out.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
                assert_eq!(
                    answered, n,
                    "bare in process: {answered} of {n} answered 200"
                );
                (secs, allocs, String::new())
            })
        }),
    );
    InProcess {
        rota: rota * 1e6 / n as f64,
        bare: bare * 1e6 / n as f64,
        rota_allocs: rota_allocs as f64 / n as f64,
        bare_allocs: bare_allocs as f64 / n as f64,
    }
}

/// The fastest of `runs` runs of [`in_process`] for each server (this
/// VM's other tenants only ever add time).
fn in_process_best_of(runs: usize, n: usize) -> InProcess {
    let mut best = in_process(n);
    for _ in 1..runs {
        let next = in_process(n);
        best.rota = best.rota.min(next.rota);
        best.bare = best.bare.min(next.bare);
    }
    best
}

/// What [`in_process`] measured, per request.
struct InProcess {
    rota: f64,
    bare: f64,
    rota_allocs: f64,
    bare_allocs: f64,
}

impl std::fmt::Display for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "in process (no sockets, one thread, best of several runs): rota {:.2} µs/req and {:.1} allocations, bare {:.2} µs/req and {:.1} allocations",
            self.rota, self.rota_allocs, self.bare, self.bare_allocs
        )
    }
}

/// Times the parts of rota's request path one by one, on one thread.
fn parts() {
    let req = String::from_utf8(request(0)).expect("ASCII");
    let query = req
        .split_once('?')
        .and_then(|(_, r)| r.split_once(' '))
        .map(|(q, _)| q.to_owned())
        .unwrap_or_default();
    let n = 200_000;
    let time = |name: &str, f: &mut dyn FnMut()| {
        for _ in 0..n / 10 {
            f();
        }
        let t = thread_cpu();
        for _ in 0..n {
            f();
        }
        println!("{name:<28} {:8.1} ns", (thread_cpu() - t) * 1e9 / n as f64);
    };
    let params = rota_local::params::Params::from_forms(&[&query, ""]).expect("query");
    time("Params::from_forms", &mut || {
        std::hint::black_box(rota_local::params::Params::from_forms(&[
            std::hint::black_box(&query),
            "",
        ]))
        .ok();
    });
    let names = [
        "Action",
        "Version",
        "AccessKeyId",
        "Signature",
        "Timestamp",
        "SignatureNonce",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureType",
        "Format",
        "SecretName",
        "VersionId",
        "VersionStage",
        "FetchExtendedConfig",
        "DryRun",
    ];
    time("15 lookups", &mut || {
        for n in names {
            std::hint::black_box(params.raw(std::hint::black_box(n)));
        }
    });
    time("v1_string_to_sign", &mut || {
        std::hint::black_box(rota_kms::sign::v1_string_to_sign("GET", params.pairs()));
    });
    let sts = rota_kms::sign::v1_string_to_sign("GET", params.pairs());
    time("v1_sign", &mut || {
        std::hint::black_box(rota_kms::sign::v1_sign(KEY_SECRET, &sts));
    });
    // The server's check: the same HMAC, the string to sign never built,
    // the key's pads hashed once.
    let key = rota_kms::sign::V1Key::new(KEY_SECRET);
    let signature = params.raw("Signature").unwrap_or_default().to_owned();
    assert!(rota_kms::sign::v1_matches(
        &key,
        "GET",
        params.pairs(),
        &signature
    ));
    time("v1_matches (the server's)", &mut || {
        std::hint::black_box(rota_kms::sign::v1_matches(
            &key,
            "GET",
            params.pairs(),
            std::hint::black_box(&signature),
        ));
    });
    time("new_request_id", &mut || {
        std::hint::black_box(rota_local::dispatch::new_request_id());
    });
    let guard = rota_local::replay::ReplayGuard::new(1_000_000);
    let mut i = 0u64;
    let now = 1_800_000_000;
    time("ReplayGuard::record", &mut || {
        i += 1;
        let nonce = format!("nonce-{i}");
        std::hint::black_box(guard.record(KEY_ID, &nonce, now, now)).ok();
    });
    time("format nonce (subtract)", &mut || {
        i += 1;
        std::hint::black_box(format!("nonce-{i}"));
    });
}

/// A server child process.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    /// For a server speaking TLS: a connector trusting its CA.
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Server {
    fn start(name: &'static str, body: Option<&str>) -> Self {
        Self::start_with(name, body, &[])
    }

    fn start_with(
        name: &'static str,
        body: Option<&str>,
        env: &[(&str, &std::path::Path)],
    ) -> Self {
        let mut cmd = Command::new(std::env::current_exe().expect("exe"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("ROTA_LOAD_SERVE", name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(b) = body {
            cmd.env("ROTA_LOAD_BODY", b);
        }
        let mut child = cmd.spawn().expect("server child");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("port line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no port in {line:?}"));
        Self {
            name,
            child,
            port,
            tls: None,
        }
    }

    fn proc_file(&self, file: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id())).unwrap_or_default()
    }

    /// CPU seconds used so far (user + system).
    fn cpu(&self) -> f64 {
        let stat = self.proc_file("stat");
        let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // Fields 14 and 15 of stat (utime, stime), in USER_HZ = 100 ticks.
        (ticks(11) + ticks(12)) / 100.0
    }

    fn rss_mb(&self) -> f64 {
        self.proc_file("status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, Iterator::count)
    }

    fn resources(&self) -> String {
        format!("RSS {:.1} MB, {} open fds", self.rss_mb(), self.fds())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ client

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A V1-signed GetSecretValue request, fresh nonce and timestamp.
fn request(port: u16) -> Vec<u8> {
    let now = rota_local::SystemClock::default().now();
    let ts = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        NONCE.fetch_add(1, Ordering::Relaxed)
    );
    let mut params = vec![
        ("AccessKeyId", KEY_ID),
        ("Action", "GetSecretValue"),
        ("Format", "JSON"),
        ("SecretName", SECRET),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce.as_str()),
        ("SignatureVersion", "1.0"),
        ("Timestamp", ts.as_str()),
        ("Version", "2016-01-20"),
    ];
    let sig = rota_kms::sign::v1_signature("GET", params.iter().copied(), KEY_SECRET);
    params.push(("Signature", sig.as_str()));
    let query = rota_kms::encode::encode_pairs(params.iter().copied());
    format!("GET /?{query} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n").into_bytes()
}

/// A client connection: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A connection to `port`, through TLS when `tls` is given.
async fn connect(
    port: u16,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> std::io::Result<Box<dyn Io>> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    let _ = s.set_nodelay(true);
    Ok(match tls {
        None => Box::new(s),
        Some(c) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            Box::new(c.connect(name, s).await?)
        }
    })
}

/// `ROTA_LOAD_PHASE=tls`: `rota local serve` over plain HTTP and over
/// HTTPS (local CA, TLS 1.3, ECDSA P-256) in alternating rounds at c=16
/// and c=64 on keep-alive connections, then with a new connection (and
/// handshake) for every request at c=16.
fn drive_tls() {
    let secs = env_secs("ROTA_BENCH_SECS", 20.0);
    let rounds = env_secs("ROTA_BENCH_ROUNDS", 5.0).max(1.0) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let now = rota_local::Clock::now(&rota_local::SystemClock::default());
    let (_, ca) = rota_local::tls::local_ca(dir.path(), &[], now).expect("local CA");
    let ca_pem = std::fs::read(&ca.cert_path).expect("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls::pki_types::CertificateDer<'_> as rustls::pki_types::pem::PemObject>::pem_slice_iter(
            &ca_pem,
        )
    {
        roots.add(cert.expect("CA certificate")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let plain = Server::start("rota", None);
    let mut tls = Server::start_with("rota-tls", None, &[("ROTA_LOAD_TLS_DIR", dir.path())]);
    tls.tls = Some(connector);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "GetSecretValue, V1-signed, `rota local serve` over HTTP and over HTTPS; {secs} s per server in {rounds} alternating rounds"
    );
    rt.block_on(async {
        for c in [16, 64] {
            let mut totals = [Run::default(), Run::default()];
            let mut ratios = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let a = load(&plain, c, secs / rounds as f64).await;
                let b = load(&tls, c, secs / rounds as f64).await;
                ratios.push(b.cpu_per_request() / a.cpu_per_request());
                totals[0].add(a);
                totals[1].add(b);
            }
            for (name, r) in ["http", "https"].iter().zip(&mut totals) {
                r.lat.sort_unstable();
                report(name, c, r);
            }
            ratios.sort_by(f64::total_cmp);
            println!(
                "c={c}: server CPU per request, https / http: median {:.2}x over {rounds} paired rounds",
                ratios[ratios.len() / 2]
            );
        }
        // A new connection for every request.
        tls.name = "https+hs";
        let r = load(&tls, 16, secs / 2.0).await;
        report("https+hs", 16, &r);
        let mut plain_fresh = plain;
        plain_fresh.name = "http+hs";
        let r = load(&plain_fresh, 16, secs / 2.0).await;
        report("http+hs", 16, &r);
    });
}

/// Reads one response; `Ok(status)`.
async fn read_response<S>(s: &mut S, buf: &mut Vec<u8>) -> std::io::Result<u16>
where
    S: tokio::io::AsyncRead + Unpin,
{
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

#[derive(Default)]
struct Run {
    ok: u64,
    errors: u64,
    secs: f64,
    lat: Vec<u32>,
    cpu: f64,
}

impl Run {
    fn cpu_per_request(&self) -> f64 {
        if self.ok == 0 {
            f64::NAN
        } else {
            self.cpu / self.ok as f64
        }
    }

    /// Adds another run of the same server and concurrency (latencies
    /// unsorted until the caller sorts them).
    fn add(&mut self, other: Run) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.secs += other.secs;
        self.cpu += other.cpu;
        self.lat.extend(other.lat);
    }
}

async fn load(server: &Server, connections: usize, secs: f64) -> Run {
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu0 = server.cpu();
    let fresh_each = server.name.ends_with("+hs");
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stop = stop.clone();
        let errors = errors.clone();
        let tls = server.tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(1024);
            let mut buf = Vec::with_capacity(2048);
            let mut conn: Option<Box<dyn Io>> = None;
            while !stop.load(Ordering::Relaxed) {
                let s = match &mut conn {
                    Some(s) => s,
                    None => match connect(port, tls.as_ref()).await {
                        Ok(s) => conn.insert(s),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let req = request(port);
                let t = Instant::now();
                let r = match s.write_all(&req).await {
                    Ok(()) => read_response(s, &mut buf).await,
                    Err(e) => Err(e),
                };
                if fresh_each {
                    // One request per connection: every request pays
                    // for a new connection (and TLS handshake).
                    conn = None;
                }
                match r {
                    Ok(200) => lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Ok(_) | Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("worker"));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = server.cpu() - cpu0;
    lat.sort_unstable();
    Run {
        ok: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs,
        lat,
        cpu,
    }
}

fn report(name: &str, connections: usize, r: &Run) {
    let pct = |p: f64| {
        if r.lat.is_empty() {
            0.0
        } else {
            f64::from(r.lat[((r.lat.len() as f64 * p) as usize).min(r.lat.len() - 1)]) / 1000.0
        }
    };
    let worst = r.lat.last().copied().map_or(0.0, |w| f64::from(w) / 1000.0);
    println!(
        "{name:<5} c={connections:<5} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  worst {:>8.2} ms  errors {:<4}  server CPU {:>5.1} µs/req",
        r.ok as f64 / r.secs,
        pct(0.50),
        pct(0.99),
        worst,
        r.errors,
        if r.ok == 0 {
            0.0
        } else {
            r.cpu * 1e6 / r.ok as f64
        },
    );
}

/// Opens `n` connections that send `prefix` and then stall; returns how
/// many the server closed (or answered) within `within`, and the slowest.
async fn stall(port: u16, n: usize, prefix: &'static [u8], within: Duration) -> (usize, Duration) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            s.write_all(prefix).await.ok()?;
            let mut sink = [0u8; 1024];
            let ended = tokio::time::timeout(within, async {
                loop {
                    match s.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            ended.is_ok().then(|| t.elapsed())
        }));
    }
    let mut closed = 0;
    let mut slowest = Duration::ZERO;
    for t in tasks {
        if let Ok(Some(d)) = t.await {
            closed += 1;
            slowest = slowest.max(d);
        }
    }
    (closed, slowest)
}

/// Sends `head` (and nothing more) and returns the status line and how
/// long the answer took.
async fn oversized(port: u16, head: Vec<u8>) -> (String, Duration) {
    let t = Instant::now();
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return ("connect failed".into(), t.elapsed());
    };
    let writer = tokio::spawn(async move {
        let _ = s.write_all(&head).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        out
    });
    let out = writer.await.unwrap_or_default();
    let line = String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("(connection closed without an answer)")
        .to_owned();
    (line, t.elapsed())
}

async fn hostile(server: &Server) {
    let port = server.port;
    let (closed, slowest) = stall(
        port,
        200,
        b"GET / HTTP/1.1\r\nhost: x\r\n",
        Duration::from_secs(10),
    )
    .await;
    println!(
        "{:<5} slow headers: {closed}/200 closed by the server, the last after {:.1} s",
        server.name,
        slowest.as_secs_f64()
    );
    let (closed, slowest) = stall(
        port,
        200,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nab",
        Duration::from_secs(10),
    )
    .await;
    println!(
        "{:<5} slow bodies:  {closed}/200 answered or closed, the last after {:.1} s",
        server.name,
        slowest.as_secs_f64()
    );
    let mut big_head = b"GET / HTTP/1.1\r\nhost: x\r\n".to_vec();
    for i in 0..16_384 {
        big_head.extend_from_slice(format!("x-filler-{i}: {}\r\n", "a".repeat(48)).as_bytes());
    }
    big_head.extend_from_slice(b"\r\n");
    let (line, took) = oversized(port, big_head).await;
    println!(
        "{:<5} 1 MiB of headers:        {line:?} after {:.1} ms",
        server.name,
        took.as_secs_f64() * 1000.0
    );
    let (line, took) = oversized(
        port,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 200000000\r\n\r\n".to_vec(),
    )
    .await;
    println!(
        "{:<5} content-length 200 MB: {line:?} after {:.1} ms",
        server.name,
        took.as_secs_f64() * 1000.0
    );
}

fn env_secs(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn drive() {
    let secs = env_secs("ROTA_BENCH_SECS", 20.0);
    let rounds = env_secs("ROTA_BENCH_ROUNDS", 5.0).max(1.0) as usize;
    let soak = env_secs("ROTA_LOAD_SECS", 60.0);
    let rota = Server::start("rota", None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The body the bare server answers: rota's own answer.
    let body = rt.block_on(async {
        let mut s = TcpStream::connect(("127.0.0.1", rota.port))
            .await
            .expect("connect");
        s.write_all(&request(rota.port)).await.expect("write");
        let mut buf = Vec::new();
        let status = read_response(&mut s, &mut buf).await.expect("answer");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&buf));
        let text = String::from_utf8_lossy(&buf).into_owned();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    });
    let hyper = Server::start("hyper", Some(&body));
    let axum = Server::start("axum", Some(&body));
    println!(
        "GetSecretValue over keep-alive HTTP/1.1, V1-signed; answer {} bytes; {} s per server in {} alternating rounds, {} s at c=1000",
        body.len(),
        secs,
        rounds,
        soak
    );
    println!("{}", in_process_best_of(3, 20_000));
    let servers = [&rota, &hyper, &axum];
    for s in servers {
        println!("{:<5} before: {}", s.name, s.resources());
    }
    rt.block_on(async {
        for c in [16, 64] {
            let mut totals = [Run::default(), Run::default(), Run::default()];
            let mut ratios = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
            for _ in 0..rounds {
                let mut runs = Vec::with_capacity(servers.len());
                for s in servers {
                    runs.push(load(s, c, secs / rounds as f64).await);
                }
                for (base, ratio) in ratios.iter_mut().enumerate() {
                    ratio.push(runs[0].cpu_per_request() / runs[base + 1].cpu_per_request());
                }
                for (total, run) in totals.iter_mut().zip(runs) {
                    total.add(run);
                }
            }
            for (s, r) in servers.iter().zip(&mut totals) {
                r.lat.sort_unstable();
                report(s.name, c, r);
            }
            for (base, ratios) in [&hyper, &axum].iter().zip(&mut ratios) {
                ratios.sort_by(f64::total_cmp);
                println!(
                    "c={c}: server CPU per request, rota / {}: median {:.2}x over {rounds} paired rounds (from {:.2}x to {:.2}x)",
                    base.name,
                    ratios[ratios.len() / 2],
                    ratios[0],
                    ratios[ratios.len() - 1]
                );
            }
        }
        for s in servers {
            let r = load(s, 1000, soak).await;
            report(s.name, 1000, &r);
            println!("{:<5} after c=1000: {}", s.name, s.resources());
        }
        for s in [&rota, &hyper] {
            hostile(s).await;
        }
    });
    // Let the servers close what the clients left.
    std::thread::sleep(Duration::from_secs(3));
    for s in [&rota, &hyper, &axum] {
        println!("{:<5} after: {}", s.name, s.resources());
    }
}
