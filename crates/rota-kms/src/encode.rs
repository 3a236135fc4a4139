//! Percent-encoding exactly as Alibaba Cloud's RPC signers do it (kms-api.md §1.4).
//!
//! `A-Z a-z 0-9 - _ . ~` stay as they are; every other UTF-8 byte becomes `%XX`
//! with upper-case hex. So space is `%20` (never `+`), `*` is `%2A`, `~` is kept.

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Which bytes the encoder keeps verbatim, indexed by byte.
const UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    t
};

/// `%00%01…%FF`: the escape of byte `b` is `ESCAPED[3b..3b+3]`.
const ESCAPED: &str = match std::str::from_utf8(&escape_table::<768>(b"%")) {
    Ok(s) => s,
    Err(_) => panic!("the escape table is ASCII"),
};

/// `%2500%2501…%25FF`: the escape of the escape of byte `b` is `TWICE[5b..5b+5]`.
const ESCAPED_TWICE: &str = match std::str::from_utf8(&escape_table::<1280>(b"%25")) {
    Ok(s) => s,
    Err(_) => panic!("the escape table is ASCII"),
};

/// Builds `prefix XX` for every byte, `N = 256 * (prefix.len() + 2)`.
const fn escape_table<const N: usize>(prefix: &[u8]) -> [u8; N] {
    let width = prefix.len() + 2;
    let mut t = [0u8; N];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < prefix.len() {
            t[b * width + i] = prefix[i];
            i += 1;
        }
        t[b * width + i] = HEX_UPPER[b >> 4];
        t[b * width + i + 1] = HEX_UPPER[b & 0xf];
        b += 1;
    }
    t
}

/// Whether `b` is an RFC 3986 unreserved byte, kept verbatim by the encoder.
#[inline]
pub(crate) fn is_unreserved(b: u8) -> bool {
    UNRESERVED[b as usize]
}

/// Appends `s` to `out`, copying runs of unreserved bytes whole and replacing
/// every other byte `b` by `table[w·b .. w·b + w]`.
#[inline]
fn encode_with(out: &mut String, s: &str, table: &str, width: usize) {
    out.reserve(s.len());
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !is_unreserved(b) {
            // A run holds only ASCII, so both ends are char boundaries.
            if run < i {
                out.push_str(&s[run..i]);
            }
            let at = b as usize * width;
            out.push_str(&table[at..at + width]);
            run = i + 1;
        }
    }
    if run < bytes.len() {
        out.push_str(&s[run..]);
    }
}

/// Appends the percent-encoding of `s` to `out`.
#[inline]
pub fn percent_encode_into(out: &mut String, s: &str) {
    encode_with(out, s, ESCAPED, 3);
}

/// Appends the percent-encoding of the percent-encoding of `s` to `out` in one
/// pass: a reserved byte `b` becomes `%25XX`, because the first pass turns it
/// into `%XX` and the second only touches the `%`.
#[inline]
pub(crate) fn percent_encode_twice_into(out: &mut String, s: &str) {
    encode_with(out, s, ESCAPED_TWICE, 5);
}

/// The escape of the escape of byte `b` (`%25XX`).
#[inline]
pub(crate) fn escaped_twice(b: u8) -> &'static [u8] {
    let at = b as usize * 5;
    &ESCAPED_TWICE.as_bytes()[at..at + 5]
}

/// The percent-encoding of `s`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    percent_encode_into(&mut out, s);
    out
}

/// The first eight bytes of `s` as a big-endian number, zero-padded: if
/// `prefix_key(a) < prefix_key(b)` then `a < b` in byte order, and if
/// `a < b` then `prefix_key(a) <= prefix_key(b)` (a zero byte and the
/// padding tie, so equal keys need the whole comparison).
#[inline]
pub fn prefix_key(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut k = [0u8; 8];
    let n = b.len().min(8);
    k[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(k)
}

/// Lower-case hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX_LOWER[(b >> 4) as usize] as char);
        out.push(HEX_LOWER[(b & 0xf) as usize] as char);
    }
    out
}

/// Error from [`form_decode`]: the input is not valid percent-encoded UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid form encoding: {0}")]
pub struct DecodeError(&'static str);

impl DecodeError {
    /// A decoding error saying `why`.
    pub fn new(why: &'static str) -> Self {
        Self(why)
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space,
/// `%XX` a byte. The bytes must be UTF-8.
pub fn form_decode(s: &str) -> Result<String, DecodeError> {
    let mut out = String::new();
    form_decode_into(&mut out, s, &mut Vec::new())?;
    Ok(out)
}

/// Appends the decoding of `s` (see [`form_decode`]) to `out`; `scratch`
/// is working space the caller may reuse between calls.
///
/// # Errors
///
/// As [`form_decode`]; `out` is then unchanged.
pub fn form_decode_into(
    out: &mut String,
    s: &str,
    scratch: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    if memchr::memchr2(b'%', b'+', s.as_bytes()).is_none() {
        out.push_str(s);
        return Ok(());
    }
    scratch.clear();
    decode_bytes(s, scratch)?;
    out.push_str(
        std::str::from_utf8(scratch).map_err(|_| DecodeError("the decoded bytes are not UTF-8"))?,
    );
    Ok(())
}

fn decode_bytes(s: &str, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut i = 0;
    // Copy the runs between escapes whole (found with SIMD searches).
    while let Some(at) = memchr::memchr2(b'%', b'+', &bytes[i..]) {
        out.extend_from_slice(&bytes[i..i + at]);
        i += at;
        if bytes[i] == b'+' {
            out.push(b' ');
            i += 1;
            continue;
        }
        match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(&h), Some(&l)) if let Some(b) = hex_byte(h, l) => out.push(b),
            _ => return Err(DecodeError("a '%' is not followed by two hex digits")),
        }
        i += 3;
    }
    out.extend_from_slice(&bytes[i..]);
    Ok(())
}

/// The byte of the escape `%` `hi` `lo`, if both are hex digits.
pub fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_val(hi)? << 4 | hex_val(lo)?)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a form-encoded string (`a=1&b=2`) into decoded pairs, in order.
/// A key without `=` gets the empty value; empty segments are skipped.
pub fn parse_form(s: &str) -> Result<Vec<(String, String)>, DecodeError> {
    form_parts(s)
        .map(|(k, v)| Ok((form_decode(k)?, form_decode(v)?)))
        .collect()
}

/// The name and value of each `name=value` part of a form or query
/// string, still encoded: empty parts are skipped, a part without `=` has
/// an empty value, the first `=` splits.
pub fn form_parts(s: &str) -> FormParts<'_> {
    FormParts { rest: s }
}

/// The iterator of [`form_parts`] (byte searches: `&` and `=` are ASCII,
/// so every split is at a character boundary).
#[derive(Debug, Clone)]
pub struct FormParts<'a> {
    rest: &'a str,
}

impl<'a> Iterator for FormParts<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let end = memchr::memchr(b'&', self.rest.as_bytes()).unwrap_or(self.rest.len());
            let part = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            if part.is_empty() {
                continue;
            }
            return Some(match memchr::memchr(b'=', part.as_bytes()) {
                Some(e) => (&part[..e], &part[e + 1..]),
                None => (part, ""),
            });
        }
    }
}

/// Encodes pairs as a form body or query string, using the signer's encoder
/// (which every server decodes the same way as `+`-style form encoding).
pub fn encode_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        percent_encode_into(&mut out, k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_keys_order_as_the_bytes_do() {
        let words = [
            "",
            "\0",
            "\0\0",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgg",
            "Signature",
            "SignatureNonce",
            "SignatureMethod",
            "é",
            "z",
        ];
        for a in words {
            for b in words {
                let (ka, kb) = (prefix_key(a), prefix_key(b));
                if ka < kb {
                    assert!(a.as_bytes() < b.as_bytes(), "{a:?} {b:?}");
                }
                if a.as_bytes() < b.as_bytes() {
                    assert!(ka <= kb, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn encodes_like_the_sdk() {
        assert_eq!(percent_encode("a b*c~d+e"), "a%20b%2Ac~d%2Be");
        assert_eq!(percent_encode("app/key:ö"), "app%2Fkey%3A%C3%B6");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn every_byte_encodes_like_the_reference() {
        // The byte-at-a-time definition of kms-api.md §1.4, against the table.
        let reference = |s: &str| {
            let mut out = String::new();
            for &b in s.as_bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        };
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        for s in [
            all.as_str(),
            "",
            "a",
            "%",
            "ö",
            "aö",
            "öa",
            "a b",
            "~~",
            "é~é",
        ] {
            assert_eq!(percent_encode(s), reference(s), "input {s:?}");
            let mut twice = String::new();
            percent_encode_twice_into(&mut twice, s);
            assert_eq!(twice, reference(&reference(s)), "input {s:?}");
        }
    }

    #[test]
    fn double_encoding_matches_two_passes() {
        for s in ["a b*c~d+e", "2016-02-23T12:46:24Z", "{\"a\":\"ö\"}", "%25"] {
            let mut once = String::new();
            percent_encode_twice_into(&mut once, s);
            assert_eq!(once, percent_encode(&percent_encode(s)), "input {s:?}");
        }
    }

    #[test]
    fn decodes_forms() {
        assert_eq!(form_decode("hello+world~%2A%2B").unwrap(), "hello world~*+");
        assert_eq!(form_decode("%C3%B6").unwrap(), "ö");
        assert!(form_decode("%zz").is_err());
        assert!(form_decode("%").is_err());
        assert!(form_decode("%FF").is_err());
        assert_eq!(
            parse_form("a=1&&b=&c").unwrap(),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), String::new())
            ]
        );
        assert_eq!(
            parse_form("&k=a=b&é=%C3%A9&").unwrap(),
            vec![
                ("k".to_owned(), "a=b".to_owned()),
                ("é".to_owned(), "é".to_owned())
            ]
        );
        assert!(parse_form("").unwrap().is_empty());
    }
}
