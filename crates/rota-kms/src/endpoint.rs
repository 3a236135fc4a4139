//! Endpoint resolution: which base URL a request for a product goes to
//! (kms-api.md §1.1).
//!
//! - KMS: `kms.<region>.aliyuncs.com`, VPC `kms-vpc.<region>.aliyuncs.com`, or
//!   a dedicated KMS instance `<kst-id>.cryptoservice.kms.aliyuncs.com`;
//! - ECS: `ecs.<region>.aliyuncs.com`, except the regions served by
//!   `ecs-cn-hangzhou.aliyuncs.com`;
//! - RDS: `rds.aliyuncs.com` for the older regions, otherwise `rds.<region>.aliyuncs.com`;
//! - RAM: `ram.aliyuncs.com` (global);
//! - any product can be pointed at a custom URL, including `http://127.0.0.1:PORT`.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;
use crate::transport::Product;

/// Regions Rota knows. Another region id is refused unless an explicit
/// endpoint is configured, so a typo does not become a DNS failure.
pub const KNOWN_REGIONS: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-nanjing",
    "cn-fuzhou",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "cn-wuhan-lr",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ap-south-1",
    "us-east-1",
    "us-west-1",
    "eu-west-1",
    "eu-central-1",
    "me-east-1",
    "me-central-1",
    "cn-hangzhou-finance",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-beijing-finance-1",
    "cn-north-2-gov-1",
];

/// Regions whose ECS API is served by `ecs-cn-hangzhou.aliyuncs.com`.
const ECS_HANGZHOU_REGIONS: &[&str] = &[
    "cn-hangzhou",
    "cn-shanghai",
    "cn-hangzhou-finance",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
];

/// Regions whose RDS API is the central `rds.aliyuncs.com`.
const RDS_CENTRAL_REGIONS: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-shenzhen",
    "cn-hongkong",
    "ap-southeast-1",
    "us-east-1",
    "us-west-1",
    "cn-hangzhou-finance",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
];

/// Which network the shared KMS gateway is reached over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// The public endpoint.
    #[default]
    Public,
    /// The VPC endpoint (`kms-vpc.<region>.aliyuncs.com`).
    Vpc,
}

/// A base URL: scheme, host and optional port, no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address.
    pub host: String,
    /// Port, if not the scheme's default.
    pub port: Option<u16>,
}

impl BaseUrl {
    /// Parses `https://host`, `http://127.0.0.1:8080`, or a bare `host[:port]`
    /// (HTTPS). A path other than `/` is refused.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad =
            |why: &str| Error::config("endpoint", format!("{s:?} is not a valid endpoint: {why}"));
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_owned(), s),
        };
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(bad("an endpoint has no path, query or fragment"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("unexpected text after ']'")),
            };
            (format!("[{h}]"), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            }
        };
        if host.is_empty() || host.contains('@') || host.chars().any(char::is_whitespace) {
            return Err(bad("the host is empty or malformed"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
            ),
            None => None,
        };
        // The default port is left out so the signed `host` equals the one sent.
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = port.filter(|p| *p != default_port);
        Ok(Self { scheme, host, port })
    }

    /// HTTPS to `host`.
    pub fn https(host: impl Into<String>) -> Self {
        Self {
            scheme: "https".into(),
            host: host.into(),
            port: None,
        }
    }

    /// The `Host` header value (with the port when there is one).
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// Whether this is an Alibaba Cloud host (quotas and rate limits apply).
    pub fn is_alibaba_cloud(&self) -> bool {
        self.host.ends_with(".aliyuncs.com")
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority())
    }
}

/// Resolves each product to a base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    region: String,
    network: Network,
    kms_instance: Option<String>,
    default_override: Option<BaseUrl>,
    overrides: BTreeMap<Product, BaseUrl>,
}

impl Endpoints {
    /// The standard endpoints of `region`. An unknown region is an error that
    /// says how to use it anyway (an explicit endpoint).
    pub fn region(region: &str) -> Result<Self, Error> {
        let region = region.trim();
        if !KNOWN_REGIONS.contains(&region) {
            let near: Vec<&str> = KNOWN_REGIONS
                .iter()
                .copied()
                .filter(|r| r.split('-').next() == region.split('-').next())
                .collect();
            let hint = if near.is_empty() {
                KNOWN_REGIONS.join(", ")
            } else {
                near.join(", ")
            };
            return Err(Error::config(
                "region",
                format!(
                    "unknown region {region:?}; known regions include {hint}; for another region set an explicit endpoint"
                ),
            ));
        }
        Ok(Self::unchecked(region))
    }

    fn unchecked(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            network: Network::Public,
            kms_instance: None,
            default_override: None,
            overrides: BTreeMap::new(),
        }
    }

    /// Every product at one custom URL (what `rota local serve` offers).
    /// `region` is any non-empty label; it is only used as `RegionId`.
    pub fn custom(region: &str, url: &str) -> Result<Self, Error> {
        if region.trim().is_empty() {
            return Err(Error::config("region", "the region is empty"));
        }
        let mut e = Self::unchecked(region.trim());
        e.default_override = Some(BaseUrl::parse(url)?);
        Ok(e)
    }

    /// Reaches KMS over the VPC endpoint.
    pub fn with_network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Sends KMS requests to a dedicated KMS instance's gateway (data-plane
    /// calls such as GetSecretValue; management calls need the shared gateway).
    pub fn with_kms_instance(mut self, instance_id: &str) -> Result<Self, Error> {
        if !instance_id.starts_with("kst-")
            || !instance_id[4..].bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(Error::config(
                "kms_instance",
                format!("{instance_id:?} is not a KMS instance id (kst-…)"),
            ));
        }
        self.kms_instance = Some(instance_id.to_owned());
        Ok(self)
    }

    /// Points one product at a custom URL.
    pub fn with_endpoint(mut self, product: Product, url: &str) -> Result<Self, Error> {
        self.overrides.insert(product, BaseUrl::parse(url)?);
        Ok(self)
    }

    /// The region id.
    pub fn region_id(&self) -> &str {
        &self.region
    }

    /// The base URL for `product`.
    pub fn resolve(&self, product: &Product) -> BaseUrl {
        if let Some(url) = self
            .overrides
            .get(product)
            .or(self.default_override.as_ref())
        {
            return url.clone();
        }
        let r = self.region.as_str();
        let host = match product {
            Product::Kms => match (&self.kms_instance, &self.network) {
                (Some(kst), _) => format!("{kst}.cryptoservice.kms.aliyuncs.com"),
                (None, Network::Vpc) => format!("kms-vpc.{r}.aliyuncs.com"),
                (None, Network::Public) => format!("kms.{r}.aliyuncs.com"),
            },
            Product::Ecs if ECS_HANGZHOU_REGIONS.contains(&r) => {
                "ecs-cn-hangzhou.aliyuncs.com".to_owned()
            }
            Product::Ecs => format!("ecs.{r}.aliyuncs.com"),
            Product::Rds if RDS_CENTRAL_REGIONS.contains(&r) => "rds.aliyuncs.com".to_owned(),
            Product::Rds => format!("rds.{r}.aliyuncs.com"),
            Product::Ram => "ram.aliyuncs.com".to_owned(),
            Product::Other(code) => format!("{code}.{r}.aliyuncs.com"),
        };
        BaseUrl::https(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_hosts() {
        let e = Endpoints::region("cn-hangzhou").unwrap();
        assert_eq!(
            e.resolve(&Product::Kms).to_string(),
            "https://kms.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            e.resolve(&Product::Ecs).to_string(),
            "https://ecs-cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            e.resolve(&Product::Rds).to_string(),
            "https://rds.aliyuncs.com"
        );
        assert_eq!(
            e.resolve(&Product::Ram).to_string(),
            "https://ram.aliyuncs.com"
        );
        let e = Endpoints::region("eu-central-1").unwrap();
        assert_eq!(
            e.resolve(&Product::Ecs).to_string(),
            "https://ecs.eu-central-1.aliyuncs.com"
        );
        assert_eq!(
            e.resolve(&Product::Rds).to_string(),
            "https://rds.eu-central-1.aliyuncs.com"
        );
        let vpc = e.clone().with_network(Network::Vpc);
        assert_eq!(
            vpc.resolve(&Product::Kms).to_string(),
            "https://kms-vpc.eu-central-1.aliyuncs.com"
        );
        let kst = e.with_kms_instance("kst-phzz61dbabacquz826y29f").unwrap();
        assert_eq!(
            kst.resolve(&Product::Kms).to_string(),
            "https://kst-phzz61dbabacquz826y29f.cryptoservice.kms.aliyuncs.com"
        );
    }

    #[test]
    fn custom_and_bad_endpoints() {
        let e = Endpoints::custom("cn-hangzhou", "http://127.0.0.1:8080").unwrap();
        assert_eq!(e.resolve(&Product::Ram).authority(), "127.0.0.1:8080");
        assert_eq!(
            BaseUrl::parse("[::1]:9").unwrap().to_string(),
            "https://[::1]:9"
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://h:99999",
            "http://h/path",
            "http://a b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
        let err = Endpoints::region("cn-hangzou").unwrap_err().to_string();
        assert!(
            err.contains("unknown region \"cn-hangzou\"") && err.contains("cn-hangzhou"),
            "{err}"
        );
        assert!(
            Endpoints::region("eu-west-1")
                .unwrap()
                .with_kms_instance("key-1")
                .is_err()
        );
    }
}
