//! `http::` — off unless the plugin's manifest (or the workflow's options)
//! grants it, and then only to the hosts listed. Requests use one reqwest
//! client (rustls with the ring provider, no proxy from the environment),
//! bounded by the step's deadline.

use std::time::Duration;

use rhai::{Dynamic, Module};

use super::{HostResult, block_on, fail, map, new_module};
use crate::convert::to_json;
use crate::env;

/// The HTTP client scripts share.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    // reqwest with rustls-no-provider needs a process-wide provider; another
    // crate may have installed one already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

fn check(what: &str, url: &str) -> HostResult<(reqwest::Client, reqwest::Url)> {
    let url = reqwest::Url::parse(url).map_err(|e| fail(what, format!("bad URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail(what, "only http and https URLs"));
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let with_port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
    let (hosts, client) = env::with(|e| (e.http_hosts.clone(), e.http.clone()))
        .ok_or_else(|| fail(what, "http is not available here"))?;
    if hosts.is_empty() {
        return Err(fail(
            what,
            "http is not granted to this script (add capabilities.http to plugin.toml)",
        ));
    }
    if !hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&host) || Some(h.as_str()) == with_port.as_deref())
    {
        return Err(fail(
            what,
            format!(
                "host {host:?} is not in the granted hosts ({})",
                hosts.join(", ")
            ),
        ));
    }
    // A speculative call has no client yet: it moves to a thread here.
    env::needs_thread()?;
    let client = client.ok_or_else(|| fail(what, "no HTTP client"))?;
    Ok((client, url))
}

fn send(what: &str, req: reqwest::RequestBuilder) -> HostResult<Dynamic> {
    let (status, body) = block_on(what, async {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body = resp.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    })?;
    Ok(map([
        ("status", Dynamic::from_int(i64::from(status))),
        ("body", Dynamic::from(body)),
    ]))
}

pub(super) fn module() -> Module {
    let mut m = new_module();
    m.set_native_fn("get", |url: &str| {
        let (c, u) = check("http::get", url)?;
        send("http::get", c.get(u))
    });
    m.set_native_fn("post", |url: &str, body: &str| {
        let (c, u) = check("http::post", url)?;
        send("http::post", c.post(u).body(body.to_owned()))
    });
    m.set_native_fn("post_json", |url: &str, body: Dynamic| {
        let (c, u) = check("http::post_json", url)?;
        // Notifications never carry secret values: secrets become "***".
        let json = to_json(&body, false, &mut false);
        send(
            "http::post_json",
            c.post(u)
                .header("content-type", "application/json")
                .body(json.to_string()),
        )
    });
    m
}
