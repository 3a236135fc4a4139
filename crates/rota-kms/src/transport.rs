//! The one dispatch path: a product-neutral RPC request ([`ApiRequest`]) and
//! the [`Transport`] that answers it.
//!
//! The typed KMS client and the generic [`crate::OpenApi::call`] are written
//! once over `Transport`. `HttpTransport` signs and sends over HTTPS; the
//! embedded local cloud (crate `rota-local`) answers in-process through the
//! same dispatcher its HTTP server uses.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::Error;

/// A boxed, sendable future (what [`Transport::call`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An Alibaba Cloud RPC product.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// Key Management Service, version 2016-01-20.
    Kms,
    /// Elastic Compute Service (Cloud Assistant), version 2014-05-26.
    Ecs,
    /// ApsaraDB RDS, version 2014-08-15.
    Rds,
    /// Resource Access Management, version 2015-05-01.
    Ram,
    /// Any other RPC product, by its code (lower-case, e.g. `sts`).
    Other(String),
}

impl Product {
    /// Parses a product code, case-insensitively (`kms`, `Ecs`, `RDS`, …).
    pub fn parse(code: &str) -> Result<Self, Error> {
        let lower = code.trim().to_ascii_lowercase();
        if lower.is_empty()
            || !lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::invalid(
                "product",
                format!("{code:?} is not a product code (letters, digits, '-')"),
            ));
        }
        Ok(match lower.as_str() {
            "kms" => Self::Kms,
            "ecs" => Self::Ecs,
            "rds" => Self::Rds,
            "ram" => Self::Ram,
            _ => Self::Other(lower),
        })
    }

    /// The lower-case code used in endpoints (`kms`, `ecs`, …).
    pub fn code(&self) -> &str {
        match self {
            Self::Kms => "kms",
            Self::Ecs => "ecs",
            Self::Rds => "rds",
            Self::Ram => "ram",
            Self::Other(code) => code,
        }
    }

    /// The API version Rota speaks for this product, if it knows one.
    pub fn default_version(&self) -> Option<&'static str> {
        match self {
            Self::Kms => Some(version::KMS),
            Self::Ecs => Some(version::ECS),
            Self::Rds => Some(version::RDS),
            Self::Ram => Some(version::RAM),
            Self::Other(_) => None,
        }
    }

    /// The product a request version belongs to, for the versions Rota knows.
    pub fn from_version(v: &str) -> Option<Self> {
        [Self::Kms, Self::Ecs, Self::Rds, Self::Ram]
            .into_iter()
            .find(|p| p.default_version() == Some(v))
    }
}

/// The OpenAPI versions Rota speaks, named once for every crate (the
/// client, the local cloud's dispatcher, Rhai's host modules).
pub mod version {
    /// KMS.
    pub const KMS: &str = "2016-01-20";
    /// ECS (Cloud Assistant).
    pub const ECS: &str = "2014-05-26";
    /// RDS.
    pub const RDS: &str = "2014-08-15";
    /// RAM.
    pub const RAM: &str = "2015-05-01";
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Where a business parameter goes on the wire, as the tea SDKs place it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The URL query.
    Query,
    /// The form-encoded body (SecretData and other large or sensitive values).
    Body,
}

/// One business parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct Param {
    /// Wire name, e.g. `SecretName` or `Tag.1.Key`.
    pub name: String,
    /// Wire value (already serialized: JSON strings, booleans as `true`/`false`).
    pub value: String,
    /// Query or body.
    pub placement: Placement,
}

/// A product-neutral RPC request: what every transport answers.
///
/// `Debug` lists parameter names only: values may be secrets.
#[derive(Clone)]
pub struct ApiRequest {
    /// The product (selects the endpoint).
    pub product: Product,
    /// API version, e.g. `2016-01-20`.
    pub version: Cow<'static, str>,
    /// Action name, e.g. `GetSecretValue`.
    pub action: Cow<'static, str>,
    /// Business parameters, in the order they were added.
    pub params: Vec<Param>,
    /// Whether sending it twice is harmless (timeouts are then retried).
    pub idempotent: bool,
}

impl ApiRequest {
    /// A request with no parameters. Not idempotent unless marked so.
    pub fn new(
        product: Product,
        version: impl Into<Cow<'static, str>>,
        action: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            product,
            version: version.into(),
            action: action.into(),
            params: Vec::new(),
            idempotent: false,
        }
    }

    /// A KMS request for `action`.
    pub fn kms(action: &'static str) -> Self {
        Self::new(Product::Kms, version::KMS, action)
    }

    /// Adds a query parameter.
    pub fn query(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.push(name, value, Placement::Query)
    }

    /// Adds a body parameter.
    pub fn body(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.push(name, value, Placement::Body)
    }

    /// Adds a parameter with an explicit placement.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        placement: Placement,
    ) -> &mut Self {
        self.params.push(Param {
            name: name.into(),
            value: value.into(),
            placement,
        });
        self
    }

    /// Marks the request idempotent.
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    /// The value of a parameter, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiRequest")
            .field("product", &self.product)
            .field("version", &self.version)
            .field("action", &self.action)
            .field(
                "params",
                &self
                    .params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

/// Something that answers RPC requests with the service's JSON response.
///
/// A successful answer is the response object (it always carries
/// `RequestId`); an error answer is an [`Error::Api`].
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends one request and returns the response object.
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<serde_json::Value, Error>>;

    /// A short description of where requests go, for logs and `rota` output
    /// (`https://kms.cn-hangzhou.aliyuncs.com`, `embedded local cloud in .rota/`).
    fn describe(&self) -> String;
}
