//! The generic OpenAPI call for any RPC product (ECS, RDS, RAM, …): the same
//! transport, signing, retries and credentials as the typed KMS client.
//! Rotation hooks use it to reach their targets.

use std::sync::Arc;

use tracing::Instrument as _;

use crate::error::{Error, Result};
use crate::transport::{ApiRequest, Placement, Product, Transport};

/// A generic RPC caller bound to a transport.
#[derive(Debug, Clone)]
pub struct OpenApi {
    transport: Arc<dyn Transport>,
}

impl OpenApi {
    /// A caller sending through `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { transport }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Calls `action` of `product` at `version` (empty: the version Rota
    /// knows for the product) with `params` in the query, returning the
    /// response object. Describe/List/Get actions are treated as idempotent.
    pub async fn call<I, K, V>(
        &self,
        product: &str,
        version: &str,
        action: &str,
        params: I,
    ) -> Result<serde_json::Value>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let product = Product::parse(product)?;
        let version = match (version.trim(), product.default_version()) {
            ("", Some(v)) => v.to_owned(),
            ("", None) => {
                return Err(Error::invalid(
                    "version",
                    format!("product {product} needs an explicit API version"),
                ));
            }
            (v, _) => v.to_owned(),
        };
        if action.is_empty() || !action.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "action",
                format!("{action:?} is not an action name"),
            ));
        }
        let idempotent = ["Describe", "List", "Get", "Query", "Check"]
            .iter()
            .any(|p| action.starts_with(p));
        let mut req = ApiRequest::new(product, version, action.to_owned()).idempotent(idempotent);
        for (k, v) in params {
            req.push(k, v, Placement::Query);
        }
        self.send(req).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, request: ApiRequest) -> Result<serde_json::Value> {
        let span = tracing::debug_span!("openapi.call", api.product = %request.product, api.action = %request.action);
        self.transport.call(request).instrument(span).await
    }
}
