//! The ECS instance metadata service of one instance of the local world
//! (`rota local serve --metadata-addr`), so that a process "on" that
//! instance gets its RAM role's temporary credentials the way it would on
//! ECS, at `http://ADDR` instead of `http://100.100.100.200`.
//!
//! - `PUT /latest/api/token` with `X-aliyun-ecs-metadata-token-ttl-seconds`
//!   (1 to 21600) answers a token (hardened mode); a request that carries
//!   `X-aliyun-ecs-metadata-token` must carry a valid one (401 otherwise);
//!   with `hardened` every `GET` must (403 without).
//! - `GET /latest/meta-data/instance-id`, `…/region-id`;
//! - `GET /latest/meta-data/ram/security-credentials/` names the role;
//! - `GET /latest/meta-data/ram/security-credentials/<role>` answers
//!   `{"AccessKeyId","AccessKeySecret","SecurityToken","Expiration",
//!   "LastUpdated","Code":"Success"}`: STS credentials of the role (see
//!   [`crate::engine::sts`]), for the role's `max_session_duration`, the
//!   same ones until less than 15 minutes remain.
//!
//! The role must trust the service `ecs.aliyuncs.com`; that is checked
//! when the service starts.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;

use crate::cloud::LocalCloud;

const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";
/// Credentials are handed out again until this close to their expiry.
const REISSUE_BEFORE_SECS: i64 = 900;
/// Most hardened-mode tokens alive at once.
const MAX_TOKENS: usize = 10_000;

/// What the metadata service serves.
#[derive(Debug, Clone)]
pub struct MetadataConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The instance it speaks for; `None`: the world's only instance with
    /// a RAM role.
    pub instance_id: Option<String>,
    /// Refuse `GET`s without a token (the instance's hardened mode).
    pub hardened: bool,
}

/// Why the metadata service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The instance, or its role, cannot be served.
    #[error("{0}")]
    World(String),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

struct State {
    cloud: LocalCloud,
    instance_id: String,
    role: String,
    hardened: bool,
    /// Tokens and when they expire (seconds since the epoch).
    tokens: Mutex<HashMap<String, i64>>,
    /// The credentials handed out last, as JSON, and their expiry.
    issued: Mutex<Option<(String, i64)>>,
}

/// A running metadata service.
#[derive(Debug)]
pub struct MetadataHandle {
    addr: SocketAddr,
    instance_id: String,
    role: String,
    task: tokio::task::JoinHandle<()>,
}

impl MetadataHandle {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The instance it speaks for.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The role whose credentials it hands out.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Stops it.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts the metadata service of `config.instance_id` on the current
/// tokio runtime.
pub async fn serve_metadata(
    cloud: LocalCloud,
    config: MetadataConfig,
) -> Result<MetadataHandle, MetadataError> {
    let (instance_id, role) = {
        let engine = cloud.engine();
        let world = &engine.world;
        let with_roles: Vec<(&String, &String)> = world
            .ecs_instances
            .iter()
            .filter_map(|(id, i)| i.ram_role.as_ref().map(|r| (id, r)))
            .collect();
        let (id, role) = match &config.instance_id {
            Some(id) => {
                let inst = world.ecs_instances.get(id).ok_or_else(|| {
                    MetadataError::World(format!(
                        "--metadata-instance {id:?} is not an ecs_instance of the world"
                    ))
                })?;
                let role = inst.ram_role.as_ref().ok_or_else(|| {
                    MetadataError::World(format!(
                        "ecs_instance {id:?} has no ram_role: its metadata service would hand out no credentials"
                    ))
                })?;
                (id.clone(), role.clone())
            }
            None => match with_roles.as_slice() {
                [(id, role)] => ((*id).clone(), (*role).clone()),
                [] => {
                    return Err(MetadataError::World(
                        "no ecs_instance of the world has a ram_role: declare one (ram_role = \"NAME\") to serve its credentials".into(),
                    ));
                }
                _ => {
                    return Err(MetadataError::World(format!(
                        "several instances have a ram_role ({}): name one with --metadata-instance",
                        with_roles
                            .iter()
                            .map(|(id, _)| id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            },
        };
        let decl = engine
            .role(&role)
            .map(|(_, d)| d)
            .ok_or_else(|| MetadataError::World(format!("ram_role {role:?} is not declared")))?;
        if !decl
            .trusted_services
            .iter()
            .any(|s| s == crate::engine::sts::ECS_SERVICE)
        {
            return Err(MetadataError::World(format!(
                "ram_role {role:?} does not trust the service {}: add it to its assume_role_policy (Principal = {{ Service = [\"{}\"] }})",
                crate::engine::sts::ECS_SERVICE,
                crate::engine::sts::ECS_SERVICE
            )));
        }
        (id, role)
    };
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| MetadataError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| MetadataError::Bind {
            addr: config.addr,
            source,
        })?;
    let state = Arc::new(State {
        cloud,
        instance_id: instance_id.clone(),
        role: role.clone(),
        hardened: config.hardened,
        tokens: Mutex::new(HashMap::new()),
        issued: Mutex::new(None),
    });
    tracing::info!(addr = %addr, instance = %instance_id, role = %role, "metadata service listening");
    let task = tokio::spawn(async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            let conn = http.serve_connection(
                TokioIo::new(stream),
                service_fn(move |req: Request<Incoming>| {
                    let answer = state.answer(&req);
                    async move { Ok::<_, Infallible>(answer) }
                }),
            );
            tokio::spawn(conn);
        }
    });
    Ok(MetadataHandle {
        addr,
        instance_id,
        role,
        task,
    })
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

impl State {
    fn now(&self) -> i64 {
        self.cloud.clock().now().timestamp()
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if req.method() == Method::PUT && path == "/latest/api/token" {
            return self.issue_token(header(TOKEN_TTL_HEADER));
        }
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "");
        }
        match header(TOKEN_HEADER) {
            Some(token) => {
                let now = self.now();
                let valid = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(token)
                    .is_some_and(|exp| *exp > now);
                if !valid {
                    return text(StatusCode::UNAUTHORIZED, "invalid or expired token");
                }
            }
            None if self.hardened => {
                return text(
                    StatusCode::FORBIDDEN,
                    "hardened mode: PUT /latest/api/token first",
                );
            }
            None => {}
        }
        match path {
            "/latest/meta-data/instance-id" => text(StatusCode::OK, self.instance_id.clone()),
            "/latest/meta-data/region-id" => {
                text(StatusCode::OK, self.cloud.engine().world.region.clone())
            }
            CREDENTIALS_PATH => text(StatusCode::OK, self.role.clone()),
            p if p
                .strip_prefix(CREDENTIALS_PATH)
                .is_some_and(|r| r == self.role) =>
            {
                self.credentials()
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn issue_token(&self, ttl: Option<&str>) -> Response<Full<Bytes>> {
        let Some(ttl) = ttl.and_then(|t| t.parse::<i64>().ok()) else {
            return text(
                StatusCode::BAD_REQUEST,
                "X-aliyun-ecs-metadata-token-ttl-seconds is required (1 to 21600)",
            );
        };
        if !(1..=21_600).contains(&ttl) {
            return text(
                StatusCode::BAD_REQUEST,
                "X-aliyun-ecs-metadata-token-ttl-seconds must be between 1 and 21600",
            );
        }
        let now = self.now();
        let token: String = {
            let bytes: [u8; 24] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        };
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, exp| *exp > now);
        if tokens.len() >= MAX_TOKENS {
            return text(StatusCode::TOO_MANY_REQUESTS, "too many tokens");
        }
        tokens.insert(token.clone(), now + ttl);
        text(StatusCode::OK, token)
    }

    fn credentials(&self) -> Response<Full<Bytes>> {
        let now = self.now();
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((body, expires)) = issued.as_ref()
            && expires - now > REISSUE_BEFORE_SECS
        {
            return json_answer(body.clone());
        }
        let engine = self.cloud.engine();
        let Some((name, role)) = engine.role(&self.role) else {
            return text(StatusCode::NOT_FOUND, "no such role");
        };
        let duration = i64::from(role.max_session_duration);
        match engine.issue_session(name, role, &self.instance_id, duration, None) {
            Ok(c) => {
                let body = json!({
                    "AccessKeyId": c.access_key_id,
                    "AccessKeySecret": c.access_key_secret.expose_secret(),
                    "SecurityToken": c.security_token.expose_secret(),
                    "Expiration": crate::engine::wire(c.expires),
                    "LastUpdated": crate::engine::wire(now),
                    "Code": "Success",
                })
                .to_string();
                *issued = Some((body.clone(), c.expires));
                json_answer(body)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the metadata service could not issue credentials");
                text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

fn json_answer(body: String) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::OK, body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
