//! Request parameters, parsed leniently the way every client sends them
//! (kms-api.md §1.2, gotchas G5–G10): booleans in any case, integers as
//! strings, repeat lists as `Name.N`, `VersionStages` as a JSON array or as
//! `{"VersionStage":[…]}`.
//!
//! `Debug` lists names only: values may be secret data.

use std::fmt;

use crate::errors::ServiceError;

/// The merged query and form-body parameters of one request: every name
/// and value decoded into one buffer (a request's parameters cost two
/// allocations, not two per parameter), each name with a short key (its
/// length and first bytes) so that a lookup compares numbers, not text.
#[derive(Clone, Default)]
pub struct Params {
    buf: String,
    /// Each pair, in arrival order.
    pairs: Vec<Pair>,
}

#[derive(Clone, Copy)]
struct Pair {
    /// [`rota_kms::encode::prefix_key`] of the name.
    key: u64,
    /// `start..end` of the name and of the value in `Params::buf`.
    name: (u32, u32),
    value: (u32, u32),
}

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

/// The bytes that end a run in a form: `&`, `=`, `+` and `%`.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'&' as usize] = true;
    t[b'=' as usize] = true;
    t[b'+' as usize] = true;
    t[b'%' as usize] = true;
    t
};

/// How many bytes of `bytes` come before the first `&`, `=`, `+` or `%`
/// (all of them when none does): eight bytes at a time, each word tested
/// for the four bytes at once (a zero-byte test per byte value: its lowest
/// hit is exact, which is the only one used).
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_at = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = zero_at(w ^ (ONES * u64::from(b'&')))
            | zero_at(w ^ (ONES * u64::from(b'=')))
            | zero_at(w ^ (ONES * u64::from(b'+')))
            | zero_at(w ^ (ONES * u64::from(b'%')));
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| SPECIAL[usize::from(b)])
        .unwrap_or(bytes.len() - i)
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Params {
    /// Parameters from pairs; for a repeated name the first wins.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        pairs.into_iter().collect()
    }

    /// The parameters of form-encoded texts (a query string, then a form
    /// body), decoded as [`rota_kms::encode::parse_form`] decodes them
    /// (empty parts skipped, a part without `=` has an empty value, `+`
    /// is a space), in one pass over each text.
    ///
    /// # Errors
    ///
    /// A text that is not valid percent-encoded UTF-8: its index in
    /// `texts`, and why.
    pub fn from_forms(texts: &[&str]) -> Result<Self, (usize, rota_kms::encode::DecodeError)> {
        use rota_kms::encode::DecodeError;
        let total: usize = texts.iter().map(|t| t.len()).sum();
        if u32::try_from(total).is_err() {
            return Err((0, DecodeError::new("the parameters are too long")));
        }
        let mut buf: Vec<u8> = Vec::with_capacity(total);
        let mut pairs: Vec<Pair> = Vec::with_capacity(16);
        for (n, text) in texts.iter().enumerate() {
            let (text_start, first_pair) = (buf.len(), pairs.len());
            let bytes = text.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                // One part: the name up to the first '=', then the value,
                // up to '&'.
                let name_start = buf.len();
                let mut name_end = None;
                let part_start = i;
                while i < bytes.len() {
                    // Copy a run of plain bytes whole, then look at what ends it.
                    let run = plain_run(&bytes[i..]);
                    buf.extend_from_slice(&bytes[i..i + run]);
                    i += run;
                    let Some(&b) = bytes.get(i) else { break };
                    match b {
                        b'&' => break,
                        b'=' if name_end.is_none() => {
                            name_end = Some(buf.len());
                            i += 1;
                        }
                        b'+' => {
                            buf.push(b' ');
                            i += 1;
                        }
                        b'%' => {
                            let byte = match (bytes.get(i + 1), bytes.get(i + 2)) {
                                (Some(&h), Some(&l)) => rota_kms::encode::hex_byte(h, l),
                                _ => None,
                            };
                            let Some(byte) = byte else {
                                return Err((
                                    n,
                                    DecodeError::new("a '%' is not followed by two hex digits"),
                                ));
                            };
                            buf.push(byte);
                            i += 3;
                        }
                        b => {
                            buf.push(b);
                            i += 1;
                        }
                    }
                }
                if i > part_start {
                    let end = buf.len();
                    let name_end = name_end.unwrap_or(end);
                    pairs.push(Pair {
                        // Set once the text is known to be UTF-8.
                        key: 0,
                        name: (offset(name_start), offset(name_end)),
                        value: (offset(name_end), offset(end)),
                    });
                }
                // Past the '&'.
                i += 1;
            }
            // This text's names and values are UTF-8, each on its own,
            // before the next text is read (the first bad text is named).
            let not_utf8 = || (n, DecodeError::new("the decoded bytes are not UTF-8"));
            let decoded = std::str::from_utf8(&buf[text_start..]).map_err(|_| not_utf8())?;
            for pair in &pairs[first_pair..] {
                let ends = [pair.name.0, pair.name.1, pair.value.1];
                if !ends
                    .iter()
                    .all(|&at| decoded.is_char_boundary(at as usize - text_start))
                {
                    return Err(not_utf8());
                }
            }
        }
        // Checked text by text above, so this cannot fail.
        let buf = String::from_utf8(buf)
            .map_err(|_| (0, DecodeError::new("the decoded bytes are not UTF-8")))?;
        for pair in &mut pairs {
            let name = buf.get(pair.name.0 as usize..pair.name.1 as usize);
            pair.key = rota_kms::encode::prefix_key(name.unwrap_or_default());
        }
        Ok(Self { buf, pairs })
    }

    /// Adds a pair.
    pub fn push(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let name = name.as_ref();
        let k = self.buf.len();
        self.buf.push_str(name);
        let v = self.buf.len();
        self.buf.push_str(value.as_ref());
        self.pairs.push(Pair {
            key: rota_kms::encode::prefix_key(name),
            name: (offset(k), offset(v)),
            value: (offset(v), offset(self.buf.len())),
        });
    }

    fn text(&self, (a, b): (u32, u32)) -> &str {
        self.buf.get(a as usize..b as usize).unwrap_or_default()
    }

    /// Every pair, in arrival order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.pairs
            .iter()
            .map(|p| (self.text(p.name), self.text(p.value)))
    }

    /// The raw value of `name`, if present (possibly empty); for a
    /// repeated name, the first to arrive.
    pub fn raw(&self, name: &str) -> Option<&str> {
        let key = rota_kms::encode::prefix_key(name);
        let len = offset(name.len());
        self.pairs
            .iter()
            .find(|p| p.key == key && p.name.1 - p.name.0 == len && self.text(p.name) == name)
            .map(|p| self.text(p.value))
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
    #[test]
    fn plain_runs_end_at_the_first_special_byte_wherever_it_is() {
        let specials = [b'&', b'=', b'+', b'%'];
        // Every length up to three words, a special byte (or none) at
        // every place, over bytes that neighbour the specials in value
        // (a word-at-a-time test that borrows across bytes would trip).
        for len in 0..24usize {
            for at in 0..=len {
                for (k, &special) in specials.iter().enumerate() {
                    let filler = [0x00, 0x01, 0x24, 0x25 ^ 0x80, 0x26, 0x27, 0xff, b'a'];
                    let mut text: Vec<u8> =
                        (0..len).map(|i| filler[(i + k) % filler.len()]).collect();
                    // Later specials must not move the answer.
                    if at < len {
                        text[at] = special;
                        for j in (at + 1..len).step_by(3) {
                            text[j] = specials[j % 4];
                        }
                    }
                    let expected = text
                        .iter()
                        .position(|b| specials.contains(b))
                        .unwrap_or(len);
                    assert_eq!(plain_run(&text), expected, "{text:?}");
                }
            }
        }
    }

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
        // Bytes that make UTF-8 only across a boundary are refused.
        assert_eq!(Params::from_forms(&["a=%C3&%A9=b"]).unwrap_err().0, 0);
        assert_eq!(Params::from_forms(&["a=%C3", "%A9=b"]).unwrap_err().0, 0);
        assert_eq!(
            Params::from_forms(&["a=1", "b=%C3%A9%C3"]).unwrap_err().0,
            1
        );
        assert!(Params::from_forms(&["a=b%", "c=1"]).is_err());
    }

    #[test]
    fn one_pass_decoding_agrees_with_parse_form_on_random_forms() {
        use rand::{Rng as _, SeedableRng as _};
        // Seeded: the same 20,000 cases on every run.
        let mut rng = rand::rngs::StdRng::seed_from_u64(20);
        let alphabet = [
            "a", "B", "=", "&", "+", "%", "2", "F", "C", "3", "A", "9", "é", "0", "%C3", "%A9",
            "%2", "%zz", "&&", "==",
        ];
        let mut form = || {
            let n = rng.random_range(0..24);
            (0..n)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect::<String>()
        };
        for _ in 0..20_000 {
            let texts = [form(), form()];
            let expected: Result<Vec<_>, usize> = texts
                .iter()
                .enumerate()
                .map(|(n, t)| rota_kms::encode::parse_form(t).map_err(|_| n))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.concat());
            let got = Params::from_forms(&[&texts[0], &texts[1]]);
            match (&expected, &got) {
                (Ok(pairs), Ok(p)) => {
                    assert!(
                        p.pairs()
                            .eq(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                        "{texts:?}"
                    );
                    for (k, _) in pairs {
                        let first = pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                        assert_eq!(p.raw(k), first, "{texts:?} {k:?}");
                    }
                }
                (Err(n), Err((m, _))) => assert_eq!(n, m, "{texts:?}"),
                _ => panic!("{texts:?}: parse_form {expected:?}, from_forms {got:?}"),
            }
        }
    }

    #[test]
    fn lookups_find_the_first_of_a_name_whatever_its_length() {
        let read =
            Params::from_forms(&["b=1&a=x&B=2&a=y&abcdefghij=3&abcdefghik=4&=e&a%00=z", "a=w"])
                .unwrap();
        let mut pushed = Params::default();
        for (k, v) in read.pairs() {
            pushed.push(k, v);
        }
        for ps in [&read, &pushed] {
            assert_eq!(ps.raw("a"), Some("x"), "the first a");
            assert_eq!(ps.raw("a\0"), Some("z"));
            assert_eq!(ps.raw("B"), Some("2"));
            assert_eq!(ps.raw(""), Some("e"));
            assert_eq!(ps.raw("abcdefghik"), Some("4"));
            assert_eq!(ps.raw("abcdefghij"), Some("3"));
            assert_eq!(ps.raw("abcdefgh"), None);
            assert_eq!(ps.raw("c"), None);
            assert_eq!(ps.pairs().count(), 9);
        }
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
