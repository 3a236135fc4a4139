//! Request parameters, parsed leniently the way every client sends them
//! (kms-api.md §1.2, gotchas G5–G10): booleans in any case, integers as
//! strings, repeat lists as `Name.N`, `VersionStages` as a JSON array or as
//! `{"VersionStage":[…]}`.
//!
//! `Debug` lists names only: values may be secret data.

use std::fmt;

use crate::errors::ServiceError;

/// The merged query and form-body parameters of one request: every name
/// and value in one buffer (a request's parameters cost two allocations,
/// not two per parameter).
#[derive(Clone, Default)]
pub struct Params {
    buf: String,
    /// Name and value of each pair, as ranges of `buf`, in arrival order.
    spans: Vec<(Span, Span)>,
}

/// `start..end` of `Params::buf`.
type Span = (usize, usize);

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.pairs().map(|(k, _)| k))
            .finish()
    }
}

impl FromIterator<(String, String)> for Params {
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        let mut p = Self::default();
        for (k, v) in iter {
            p.push(k, v);
        }
        p
    }
}

impl Params {
    /// Parameters from pairs; for a repeated name the first wins.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        pairs.into_iter().collect()
    }

    /// The parameters of form-encoded texts (a query string, then a form
    /// body), decoded.
    ///
    /// # Errors
    ///
    /// A text that is not valid percent-encoded UTF-8: its index in
    /// `texts`, and why.
    pub fn from_forms(texts: &[&str]) -> Result<Self, (usize, rota_kms::encode::DecodeError)> {
        let mut p = Self {
            buf: String::with_capacity(texts.iter().map(|t| t.len()).sum()),
            spans: Vec::with_capacity(16),
        };
        let mut scratch = Vec::new();
        for (n, text) in texts.iter().enumerate() {
            for (k, v) in rota_kms::encode::form_parts(text) {
                let key = p.decode(k, &mut scratch).map_err(|e| (n, e))?;
                let value = p.decode(v, &mut scratch).map_err(|e| (n, e))?;
                p.spans.push((key, value));
            }
        }
        Ok(p)
    }

    /// Appends the form-decoding of `s` to the buffer; returns its range.
    fn decode(
        &mut self,
        s: &str,
        scratch: &mut Vec<u8>,
    ) -> Result<Span, rota_kms::encode::DecodeError> {
        let start = self.buf.len();
        rota_kms::encode::form_decode_into(&mut self.buf, s, scratch)?;
        Ok((start, self.buf.len()))
    }

    /// Adds a pair.
    pub fn push(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let k = self.buf.len();
        self.buf.push_str(name.as_ref());
        let v = self.buf.len();
        self.buf.push_str(value.as_ref());
        self.spans.push(((k, v), (v, self.buf.len())));
    }

    fn text(&self, (a, b): Span) -> &str {
        self.buf.get(a..b).unwrap_or_default()
    }

    /// Every pair, in arrival order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|&(k, v)| (self.text(k), self.text(v)))
    }

    /// The raw value of `name`, if present (possibly empty).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The value of `name` if present and not empty.
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    /// The value of a required parameter (`MissingParameter` when absent or empty).
    pub fn req(&self, name: &str) -> Result<&str, ServiceError> {
        self.opt(name).ok_or_else(|| ServiceError::missing(name))
    }

    /// A boolean: `true`/`false` in any case (Python sends `True`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ServiceError> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| ServiceError::invalid(name, "must be true or false")),
        }
    }

    /// An integer, sent as a string.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ServiceError> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ServiceError::invalid(name, "must be an integer")),
        }
    }

    /// An integer in `min..=max`, or `default`.
    pub fn int_in(
        &self,
        name: &str,
        min: i64,
        max: i64,
        default: i64,
    ) -> Result<i64, ServiceError> {
        let v = self.int(name)?.unwrap_or(default);
        if v < min || v > max {
            return Err(ServiceError::invalid(
                name,
                format!("must be between {min} and {max}"),
            ));
        }
        Ok(v)
    }

    /// A repeat list `Name.1`, `Name.2`, … in index order (gaps allowed).
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u32, &str)> = self
            .pairs()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
                let n: u32 = rest.parse().ok()?;
                Some((n, v))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.dedup_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v.to_owned()).collect()
    }

    /// A repeat list of objects `Name.N.Field`: for each N in order, the
    /// values of `fields` (absent fields are `None`).
    pub fn object_list(&self, prefix: &str, fields: &[&str]) -> Vec<Vec<Option<String>>> {
        let mut indexes: Vec<u32> = self
            .pairs()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
                let (n, field) = rest.split_once('.')?;
                fields.contains(&field).then_some(())?;
                n.parse().ok()
            })
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|n| {
                fields
                    .iter()
                    .map(|f| self.raw(&format!("{prefix}.{n}.{f}")).map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    /// A JSON-valued parameter.
    pub fn json(&self, name: &str) -> Result<Option<serde_json::Value>, ServiceError> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => serde_json::from_str(v)
                .map(Some)
                .map_err(|_| ServiceError::invalid(name, "is not valid JSON")),
        }
    }

    /// A list of strings sent as a JSON array (`["a","b"]`), as the old
    /// wrapped form (`{"VersionStage":["a"]}`), or as a single bare string.
    pub fn string_list(
        &self,
        name: &str,
        wrapper: &str,
    ) -> Result<Option<Vec<String>>, ServiceError> {
        let Some(raw) = self.opt(name) else {
            return Ok(None);
        };
        let bad = || ServiceError::invalid(name, "must be a JSON array of strings");
        let value: serde_json::Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(_) if !raw.trim_start().starts_with(['[', '{']) => {
                return Ok(Some(vec![raw.to_owned()]));
            }
            Err(_) => return Err(bad()),
        };
        let array = match value {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(mut o) => match o.remove(wrapper) {
                Some(serde_json::Value::Array(a)) => a,
                Some(serde_json::Value::String(s)) => vec![serde_json::Value::String(s)],
                _ => return Err(bad()),
            },
            serde_json::Value::String(s) => vec![serde_json::Value::String(s)],
            _ => return Err(bad()),
        };
        array
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// `true`/`false` in any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forms_are_read_into_one_buffer_as_parse_form_reads_them() {
        let query = "Action=GetSecretValue&SecretName=app%2Fdb&&Flag&Sig=a%2Bb%3D";
        let body = "Note=caf%C3%A9+au+lait&SecretName=second";
        let p = Params::from_forms(&[query, body]).unwrap();
        let mut expected = rota_kms::encode::parse_form(query).unwrap();
        expected.extend(rota_kms::encode::parse_form(body).unwrap());
        assert!(
            p.pairs()
                .eq(expected.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        );
        assert_eq!(p.raw("SecretName"), Some("app/db"), "the first wins");
        assert_eq!(p.raw("Flag"), Some(""));
        assert_eq!(p.opt("Note"), Some("café au lait"));
        assert_eq!(Params::from_forms(&["a=1", "b=%zz"]).unwrap_err().0, 1);
        assert_eq!(Params::from_forms(&["a=%FF"]).unwrap_err().0, 0);
    }

    #[test]
    fn lenient_values() {
        let ps = p(&[
            ("A", "True"),
            ("B", "FALSE"),
            ("N", " 42 "),
            ("Tag.2.Key", "k2"),
            ("Tag.1.Key", "k1"),
            ("Tag.1.Value", "v1"),
            ("ResourceId.2", "b"),
            ("ResourceId.1", "a"),
            ("S1", r#"["ACSCurrent","x"]"#),
            ("S2", r#"{"VersionStage":["ACSCurrent"]}"#),
            ("S3", "ACSPending"),
        ]);
        assert_eq!(ps.bool("A").unwrap(), Some(true));
        assert_eq!(ps.bool("B").unwrap(), Some(false));
        assert_eq!(ps.int("N").unwrap(), Some(42));
        assert_eq!(ps.list("ResourceId"), vec!["a", "b"]);
        assert_eq!(
            ps.object_list("Tag", &["Key", "Value"]),
            vec![
                vec![Some("k1".into()), Some("v1".into())],
                vec![Some("k2".into()), None]
            ]
        );
        assert_eq!(
            ps.string_list("S1", "VersionStage").unwrap().unwrap(),
            vec!["ACSCurrent", "x"]
        );
        assert_eq!(
            ps.string_list("S2", "VersionStage").unwrap().unwrap(),
            vec!["ACSCurrent"]
        );
        assert_eq!(
            ps.string_list("S3", "VersionStage").unwrap().unwrap(),
            vec!["ACSPending"]
        );
        assert!(ps.req("Missing").is_err());
    }
}
