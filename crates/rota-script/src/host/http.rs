//! `http::` — off unless the plugin's manifest (or the workflow's options)
//! grants it, and then only to the granted hosts and ports. Requests use one
//! reqwest client (rustls with the ring provider, no proxy from the
//! environment, no redirects), bounded by the step's deadline.
//!
//! **Grants.** `"host"` allows the scheme's default port (80 for http, 443
//! for https), `"host:port"` that port, `"host:*"` every port. Host names
//! compare case-insensitively; an IP address is written as one.
//!
//! **Calls.** `get(url)`, `post(url, body)`, `post_json(url, value)` (secrets
//! in `value` are sent as `***`: for notifications), and the builder
//! `request(#{ method, url, headers, body | json, timeout_ms, ca_pem })`,
//! which returns `#{ status, headers, body }`. Secrets may be header values,
//! the `body` or values inside `json`: they are revealed into the request
//! (a token service needs them) and scrubbed, with their encodings, from
//! anything the call logs or returns as an error.
//!
//! **Errors** name the call, the method and `scheme://host:port` and the
//! failure class; never the path, query, headers or body.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rhai::{Dynamic, Map, Module};

use super::{HostResult, block_on, fail, map, new_module};
use crate::convert::to_json;
use crate::env;
use crate::secret::Secret;

/// The longest a request may take when the builder sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body kept (larger ones fail the call).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The HTTP client scripts share.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    builder().build()
}

fn builder() -> reqwest::ClientBuilder {
    // reqwest with rustls-no-provider needs a process-wide provider; another
    // crate may have installed one already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(DEFAULT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
}

/// `scheme://host:port` of `url`: all an error may show of it.
fn origin(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// Whether `grant` allows `url`'s host and port (see the module docs).
fn granted(grant: &str, url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default();
    let default_port = match url.scheme() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let (g_host, g_port) = match grant.rsplit_once(':') {
        // An IPv6 literal without a port (`[::1]`) has colons of its own.
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, Some(p)),
        _ => (grant, None),
    };
    let g_host = g_host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !g_host.eq_ignore_ascii_case(host) {
        return false;
    }
    match g_port {
        None => port.is_some() && port == default_port,
        Some("*") => true,
        Some(p) => p.parse::<u16>().ok() == port,
    }
}

fn check(what: &str, url: &str) -> HostResult<(reqwest::Client, reqwest::Url)> {
    let url = reqwest::Url::parse(url).map_err(|e| fail(what, format!("bad URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail(what, "only http and https URLs"));
    }
    let (hosts, client) = env::with(|e| (e.http_hosts.clone(), e.http.clone()))
        .ok_or_else(|| fail(what, "http is not available here"))?;
    if hosts.is_empty() {
        return Err(fail(
            what,
            "http is not granted to this script (add capabilities.http to plugin.toml)",
        ));
    }
    if !hosts.iter().any(|h| granted(h, &url)) {
        return Err(fail(
            what,
            format!(
                "{} is not granted (granted: {}; a bare host allows its scheme's default port, host:PORT one port, host:* every port)",
                origin(&url),
                hosts.join(", ")
            ),
        ));
    }
    // A speculative call has no client yet: it moves to a thread here.
    env::needs_thread()?;
    let client = client.ok_or_else(|| fail(what, "no HTTP client"))?;
    Ok((client, url))
}

/// Why a request failed, without its URL: the class and the cause.
fn describe(e: &reqwest::Error) -> String {
    let class = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read"
    } else if e.is_request() {
        "the request could not be sent"
    } else {
        "failed"
    };
    let mut text = class.to_owned();
    let mut source = std::error::Error::source(e);
    // The innermost cause is the telling one (`Connection refused`, …).
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(l) = last {
        text.push_str(": ");
        text.push_str(&l);
    }
    text
}

/// Sends `req` (to `url`, for errors) and answers `#{ status, headers, body }`.
fn send(
    what: &str,
    url: &reqwest::Url,
    method: &str,
    req: reqwest::RequestBuilder,
) -> HostResult<Dynamic> {
    let at = format!("{method} {}", origin(url));
    let answer = block_on(what, async {
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{at}: {}", describe(&e.without_url())))?;
        let status = resp.status().as_u16();
        let headers: Map = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().into(), Dynamic::from(v.to_owned())))
            })
            .collect();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("{at}: {}", describe(&e.without_url())))?;
        if bytes.len() > MAX_BODY {
            return Err(format!("{at}: the answer is larger than {MAX_BODY} bytes"));
        }
        Ok::<_, String>((
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    })?;
    let (status, headers, body) = answer;
    Ok(map([
        ("status", Dynamic::from_int(i64::from(status))),
        ("headers", Dynamic::from_map(headers)),
        ("body", Dynamic::from(body)),
    ]))
}

/// The text of a header value or body: a string, or a secret revealed (and
/// remembered for scrubbing).
fn text_of(what: &str, field: &str, v: &Dynamic) -> HostResult<(String, bool)> {
    if let Some(s) = v.clone().try_cast::<Secret>() {
        env::with(|e| e.remember(s.expose()));
        return Ok((s.expose().expose_secret().to_owned(), true));
    }
    if v.is_string() {
        return Ok((v.clone().into_string().unwrap_or_default(), false));
    }
    if v.is_int() || v.is_bool() || v.is_float() {
        return Ok((v.to_string(), false));
    }
    Err(fail(
        what,
        format!(
            "{field} must be a string or a secret, not {}",
            v.type_name()
        ),
    ))
}

/// `http::request(#{ … })`: see the module docs.
fn request(opts: &Map) -> HostResult<Dynamic> {
    const WHAT: &str = "http::request";
    const KEYS: &[&str] = &[
        "method",
        "url",
        "headers",
        "body",
        "json",
        "timeout_ms",
        "ca_pem",
    ];
    if let Some(k) = opts.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(fail(
            WHAT,
            format!("unknown option {k:?}; options: {}", KEYS.join(", ")),
        ));
    }
    let url = opts
        .get("url")
        .and_then(|u| u.clone().into_string().ok())
        .ok_or_else(|| fail(WHAT, "url (a string) is required"))?;
    let method = opts
        .get("method")
        .map_or_else(|| Ok("GET".to_owned()), |m| m.clone().into_string())
        .map_err(|_| fail(WHAT, "method must be a string"))?
        .to_ascii_uppercase();
    let verb = reqwest::Method::from_bytes(method.as_bytes())
        .ok()
        .filter(|_| {
            ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].contains(&method.as_str())
        })
        .ok_or_else(|| {
            fail(
                WHAT,
                format!(
                    "method {method:?} is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
                ),
            )
        })?;
    let (shared, url) = check(WHAT, &url)?;
    let client = match opts.get("ca_pem") {
        None => shared,
        Some(pem) => {
            let pem = pem
                .clone()
                .into_string()
                .map_err(|_| fail(WHAT, "ca_pem must be a PEM string"))?;
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|_| fail(WHAT, "ca_pem is not a PEM certificate"))?;
            builder()
                .add_root_certificate(cert)
                .build()
                .map_err(|e| fail(WHAT, format!("cannot set up TLS: {}", describe(&e))))?
        }
    };
    let mut req = client.request(verb, url.clone());
    if let Some(h) = opts.get("headers") {
        let h = h
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| fail(WHAT, "headers must be a map"))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &h {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| fail(WHAT, format!("{k:?} is not a header name")))?;
            let (text, secret) = text_of(WHAT, &format!("header {k}"), v)?;
            let mut value = HeaderValue::from_str(&text)
                .map_err(|_| fail(WHAT, format!("header {k} has a value HTTP cannot carry")))?;
            value.set_sensitive(secret || k.eq_ignore_ascii_case("authorization"));
            headers.insert(name, value);
        }
        req = req.headers(headers);
    }
    match (opts.get("body"), opts.get("json")) {
        (Some(_), Some(_)) => return Err(fail(WHAT, "give body or json, not both")),
        (Some(b), None) => req = req.body(text_of(WHAT, "body", b)?.0),
        (None, Some(j)) => {
            let mut secret = false;
            let value = to_json(j, true, &mut secret);
            req = req
                .header("content-type", "application/json")
                .body(value.to_string());
        }
        (None, None) => {}
    }
    if let Some(t) = opts.get("timeout_ms") {
        let ms = t
            .as_int()
            .ok()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| fail(WHAT, "timeout_ms must be a positive integer"))?;
        req = req.timeout(Duration::from_millis(ms.unsigned_abs()));
    }
    send(WHAT, &url, &method, req)
}

pub(super) fn module() -> Module {
    let mut m = new_module();
    m.set_native_fn("get", |url: &str| {
        let (c, u) = check("http::get", url)?;
        send("http::get", &u, "GET", c.get(u.clone()))
    });
    m.set_native_fn("post", |url: &str, body: &str| {
        let (c, u) = check("http::post", url)?;
        send(
            "http::post",
            &u,
            "POST",
            c.post(u.clone()).body(body.to_owned()),
        )
    });
    m.set_native_fn("post_json", |url: &str, body: Dynamic| {
        let (c, u) = check("http::post_json", url)?;
        // Notifications never carry secret values: secrets become "***".
        let json = to_json(&body, false, &mut false);
        send(
            "http::post_json",
            &u,
            "POST",
            c.post(u.clone())
                .header("content-type", "application/json")
                .body(json.to_string()),
        )
    });
    m.set_native_fn("request", |opts: Map| request(&opts));
    m
}

#[cfg(test)]
mod tests {
    use super::granted;

    #[test]
    fn grants_name_hosts_and_ports() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(granted("api.example", &u("https://api.example/v1")));
        assert!(granted("API.example", &u("http://api.example/")));
        assert!(!granted("api.example", &u("https://api.example:8443/")));
        assert!(granted("api.example:8443", &u("https://api.example:8443/")));
        assert!(granted("api.example:*", &u("https://api.example:8443/")));
        assert!(!granted("api.example:80", &u("https://api.example/")));
        assert!(granted("127.0.0.1:9000", &u("http://127.0.0.1:9000/x?y=1")));
        assert!(!granted("127.0.0.1", &u("http://127.0.0.1:9000/")));
        assert!(!granted("other.example", &u("https://api.example/")));
        assert!(granted("[::1]:8080", &u("http://[::1]:8080/")));
    }
}
