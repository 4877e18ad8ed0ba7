//! The typed values inside a v1 plaintext, `type tag ‖ value bytes` (docs/FORMAT.md, "Plaintext"),
//! and the reader's rules: a value is accepted only in the one form a correct writer produces.
//!
//! The JavaScript layer decodes values itself (`lib/format/value-codec.ts`); this module lets the
//! core refuse the same malformed values where plaintexts never reach JavaScript, so that
//! re-encryption cannot carry a value no reader accepts into a fresh ciphertext.

use std::collections::HashSet;

use crate::error::{Error, Result};

/// Byte 0 of every plaintext. Frozen by format v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ValueTag {
    /// Raw bytes: any content.
    Bytes = 0x00,
    /// Well-formed UTF-8.
    String = 0x01,
    /// Big-endian IEEE 754 binary64; a NaN only as [`CANONICAL_NAN`].
    Number = 0x02,
    /// ASCII decimal, `0` or `-?[1-9][0-9]*`.
    BigInt = 0x03,
    /// One byte, `00` or `01`.
    Boolean = 0x04,
    /// A binary64 time value: an integer in ±8.64e15 ms, never −0.
    Date = 0x05,
    /// JSON text exactly as ECMAScript's `JSON.stringify` writes it (see [`check_json`]).
    Json = 0x06,
}

impl ValueTag {
    /// The tag of byte `b`; [`Error::Format`] for an unknown tag.
    pub fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            0x00 => Self::Bytes,
            0x01 => Self::String,
            0x02 => Self::Number,
            0x03 => Self::BigInt,
            0x04 => Self::Boolean,
            0x05 => Self::Date,
            0x06 => Self::Json,
            _ => return Err(Error::Format("decrypted value has an unknown type tag")),
        })
    }
}

/// The only NaN a writer stores, so that a deterministic ciphertext of NaN is unique.
pub const CANONICAL_NAN: [u8; 8] = [0x7f, 0xf8, 0, 0, 0, 0, 0, 0];

/// Largest absolute time value of a Date, in milliseconds (ECMAScript's TimeClip range).
pub const MAX_TIME_MS: f64 = 8.64e15;

/// Deepest nesting of arrays and objects a JSON value may have; the outermost container is level 1.
pub const MAX_JSON_DEPTH: usize = 1000;

/// Checks a whole plaintext (`type tag ‖ value bytes`).
pub fn check_plaintext(plaintext: &[u8]) -> Result<()> {
    match plaintext.split_first() {
        Some((&tag, value)) => check_value(ValueTag::from_byte(tag)?, value),
        None => Err(Error::Format("decrypted plaintext has no type tag")),
    }
}

/// Checks that `value` is what a writer produces for `tag`; [`Error::Format`] otherwise.
pub fn check_value(tag: ValueTag, value: &[u8]) -> Result<()> {
    let ok = match tag {
        ValueTag::Bytes => true,
        ValueTag::String => {
            return core::str::from_utf8(value)
                .map(|_| ())
                .map_err(|_| Error::Format("decrypted string is not valid UTF-8"))
        }
        ValueTag::Number => {
            float64(value).is_some_and(|x| !x.is_nan() || value == CANONICAL_NAN.as_slice())
        }
        ValueTag::BigInt => is_bigint_text(value),
        ValueTag::Boolean => value.len() == 1 && value[0] <= 1,
        ValueTag::Date => float64(value).is_some_and(is_time_value),
        ValueTag::Json => return check_json(value),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Format(match tag {
            ValueTag::Number => "decrypted number value is malformed",
            ValueTag::BigInt => "decrypted bigint value is malformed",
            ValueTag::Boolean => "decrypted boolean value is malformed",
            _ => "decrypted Date value is malformed",
        }))
    }
}

fn float64(value: &[u8]) -> Option<f64> {
    <[u8; 8]>::try_from(value).ok().map(f64::from_be_bytes)
}

fn is_time_value(t: f64) -> bool {
    t.fract() == 0.0 && t.abs() <= MAX_TIME_MS && !(t == 0.0 && t.is_sign_negative())
}

fn is_bigint_text(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    match digits.split_first() {
        Some((b'0', rest)) => rest.is_empty() && digits.len() == text.len(),
        Some((b'1'..=b'9', rest)) => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Checks that `text` is JSON exactly as ECMAScript's `JSON.stringify` writes a value made of plain
/// objects, arrays, finite numbers, strings, booleans and null: well-formed UTF-8; at the top level
/// `null`, an array or an object; no whitespace; numbers in `Number::toString` form; strings with
/// only the escapes `JSON.stringify` writes; no duplicate keys; array-index keys first, ascending;
/// at most [`MAX_JSON_DEPTH`] levels of nesting.
pub fn check_json(text: &[u8]) -> Result<()> {
    if core::str::from_utf8(text).is_err() {
        return Err(Error::Format("decrypted JSON is not valid UTF-8"));
    }
    if text == b"null" || (JsonReader { text, at: 0 }).container_document() {
        Ok(())
    } else {
        Err(Error::Format("decrypted JSON value is malformed"))
    }
}

/// Keys already seen in an open object: index keys must ascend and come before the others.
#[derive(Default)]
struct ObjectKeys<'a> {
    last_index: Option<u32>,
    named: HashSet<&'a [u8]>,
}

enum Open<'a> {
    Array,
    Object(ObjectKeys<'a>),
}

struct JsonReader<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> JsonReader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn eat_all(&mut self, literal: &[u8]) -> bool {
        let found = self.text[self.at..].starts_with(literal);
        self.at += if found { literal.len() } else { 0 };
        found
    }

    /// An array or object at the top level, then the end of the text. Iterative, so that nesting
    /// depth costs heap, not stack.
    fn container_document(mut self) -> bool {
        if !matches!(self.peek(), Some(b'[' | b'{')) {
            return false;
        }
        let mut open: Vec<Open<'a>> = Vec::new();
        let mut want_value = true;
        loop {
            if want_value {
                match self.peek() {
                    Some(b'[') => {
                        self.at += 1;
                        open.push(Open::Array);
                        if open.len() > MAX_JSON_DEPTH {
                            return false;
                        }
                        want_value = !self.eat(b']');
                        if !want_value {
                            open.pop();
                        }
                    }
                    Some(b'{') => {
                        self.at += 1;
                        let mut keys = ObjectKeys::default();
                        if self.eat(b'}') {
                            want_value = false;
                        } else if !self.member_key(&mut keys) {
                            return false;
                        }
                        open.push(Open::Object(keys));
                        if open.len() > MAX_JSON_DEPTH {
                            return false;
                        }
                        if !want_value {
                            open.pop();
                        }
                    }
                    _ => {
                        if !self.scalar() {
                            return false;
                        }
                        want_value = false;
                    }
                }
                continue;
            }
            match open.last_mut() {
                None => return self.at == self.text.len(),
                Some(Open::Array) => {
                    if self.eat(b',') {
                        want_value = true;
                    } else if self.eat(b']') {
                        open.pop();
                    } else {
                        return false;
                    }
                }
                Some(Open::Object(keys)) => {
                    if self.eat(b',') {
                        if !self.member_key(keys) {
                            return false;
                        }
                        want_value = true;
                    } else if self.eat(b'}') {
                        open.pop();
                    } else {
                        return false;
                    }
                }
            }
        }
    }

    /// `"key":`, checking the key's place among the object's keys.
    fn member_key(&mut self, keys: &mut ObjectKeys<'a>) -> bool {
        let start = self.at + 1;
        if !self.string() {
            return false;
        }
        let key = &self.text[start..self.at - 1];
        let placed = match array_index(key) {
            Some(index) => {
                let ascending = keys.last_index.is_none_or(|last| index > last);
                keys.last_index = Some(index);
                ascending && keys.named.is_empty()
            }
            None => keys.named.insert(key),
        };
        placed && self.eat(b':')
    }

    fn scalar(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b't') => self.eat_all(b"true"),
            Some(b'f') => self.eat_all(b"false"),
            Some(b'n') => self.eat_all(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    /// A string with only the escapes `JSON.stringify` writes: `\"`, `\\`, `\b \f \n \r \t`,
    /// `\u00xx` (lowercase) for the other controls, `\udxxx` (lowercase) for lone surrogates.
    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return true;
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 1,
                        Some(b'u') => {
                            let Some(unit) = self.unicode_escape() else {
                                return false;
                            };
                            let canonical = match unit {
                                0x08 | 0x09 | 0x0a | 0x0c | 0x0d => false,
                                0x00..=0x1f | 0xdc00..=0xdfff => true,
                                // A high surrogate escaped then a low one escaped is a pair, which
                                // the writer leaves as a literal character.
                                0xd800..=0xdbff => {
                                    !self.text[self.at..].starts_with(b"\\u")
                                        || !matches!(
                                            self.clone_at().unicode_escape(),
                                            Some(0xdc00..=0xdfff)
                                        )
                                }
                                _ => false,
                            };
                            if !canonical {
                                return false;
                            }
                        }
                        _ => return false,
                    }
                }
                Some(0x00..=0x1f) | None => return false,
                Some(_) => self.at += 1,
            }
        }
    }

    fn clone_at(&self) -> Self {
        JsonReader {
            text: self.text,
            at: self.at + 1,
        }
    }

    /// After `\`, at `u`: four lowercase hex digits.
    fn unicode_escape(&mut self) -> Option<u32> {
        let hex = self.text.get(self.at + 1..self.at + 5)?;
        let mut unit = 0u32;
        for &digit in hex {
            let value = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                _ => return None,
            };
            unit = unit << 4 | u32::from(value);
        }
        self.at += 5;
        Some(unit)
    }

    /// A number whose text is exactly ECMAScript's `Number::toString` of its value.
    fn number(&mut self) -> bool {
        let start = self.at;
        self.eat(b'-');
        let digits = |r: &mut Self| {
            let from = r.at;
            while r.peek().is_some_and(|b| b.is_ascii_digit()) {
                r.at += 1;
            }
            r.at > from
        };
        if !digits(self) {
            return false;
        }
        if self.eat(b'.') && !digits(self) {
            return false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return false;
            }
        }
        let text = core::str::from_utf8(&self.text[start..self.at]).unwrap_or("");
        text.parse::<f64>()
            .is_ok_and(|x| x.is_finite() && ecmascript_number_text(x) == text)
    }
}

/// `key` as an array index (`0` or `[1-9][0-9]*`, at most 2³² − 2): such keys come first in the
/// order ECMAScript enumerates an object's keys.
fn array_index(key: &[u8]) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key[0] == b'0') {
        return None;
    }
    let mut n = 0u64;
    for &b in key {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    u32::try_from(n).ok().filter(|&i| i != u32::MAX)
}

/// ECMAScript's `Number::toString(x)` for a finite `x` (ECMA-262, 6.1.6.1.20): the shortest
/// digits that round-trip, laid out plainly for exponents −7 < n ≤ 21 and as `d.ddde±n` otherwise.
pub fn ecmascript_number_text(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let (digits, n) = shortest_digits(x.abs());
    let k = digits.len() as i64;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e_sign = if e >= 0 { '+' } else { '-' };
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{fraction}e{e_sign}{}", e.abs())
    };
    format!("{sign}{body}")
}

/// The shortest decimal digits `s` and exponent `n` with `s × 10^(n − len(s))` = `x` once rounded
/// to binary64, closest to `x`, and on a tie the even one (ECMA-262's rule). Rust's `{:e}` gives
/// the shortest closest digits but may settle a tie on the odd one, e.g. 2.5728225708007812 (exactly
/// 2.57282257080078125), so an odd last digit is checked against its even neighbours.
fn shortest_digits(x: f64) -> (String, i64) {
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mut digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let exponent = exponent.parse::<i64>().unwrap_or(0);
    let last = digits.as_bytes()[digits.len() - 1] - b'0';
    if last % 2 == 1 {
        for neighbour in [last - 1, last + 1].into_iter().filter(|&d| d <= 9) {
            let prefix = &digits[..digits.len() - 1];
            let candidate = format!("{prefix}{neighbour}");
            let value =
                format!("{}.{}e{exponent}", &candidate[..1], &candidate[1..]).parse::<f64>();
            let midpoint = format!("{prefix}{}5", last.min(neighbour));
            if value == Ok(x) && exact_digits(x) == (midpoint, exponent) {
                digits = candidate;
                break;
            }
        }
    }
    (digits, exponent + 1)
}

/// All significant digits of `x` (every binary64 is a finite decimal), without trailing zeros, and
/// its decimal exponent.
fn exact_digits(x: f64) -> (String, i64) {
    // 767 significant digits suffice for any binary64.
    let scientific = format!("{x:.800e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    (
        digits.trim_end_matches('0').to_owned(),
        exponent.parse().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_ok(text: &str) -> bool {
        check_json(text.as_bytes()).is_ok()
    }

    #[test]
    fn numbers_print_as_ecmascript_does() {
        let cases: [(f64, &str); 19] = [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.000_123, "0.000123"),
            (2f64.powi(53), "9007199254740992"),
            (1.2345e25, "1.2345e+25"),
            (100.0, "100"),
            (2.5728225708007812, "2.5728225708007812"),
            (1826885938644409.2, "1826885938644409.2"),
            (-10492053051.570312, "-10492053051.570312"),
        ];
        for (x, text) in cases {
            assert_eq!(ecmascript_number_text(x), text, "{x:e}");
        }
    }

    #[test]
    fn json_accepts_what_the_writer_writes() {
        for text in [
            "null",
            "[]",
            "{}",
            r#"{"1":0,"2":0,"b":1,"a":[true,false,null,"x"]}"#,
            r#"["\"\\\b\f\n\r\t\u0000\u001f\ud800","\udc00x","é💡",-0.5,1e+21]"#,
            "[[[[]]]]",
            r#"{"4294967294":2,"4294967295":1}"#,
        ] {
            assert!(json_ok(text), "{text}");
        }
        let deepest = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(json_ok(&deepest));
    }

    #[test]
    fn json_refuses_what_the_writer_never_writes() {
        for text in [
            "",
            "\"s\"",
            "5",
            "true",
            " []",
            "[] ",
            "[1,]",
            "[-0]",
            "[1.0]",
            "[1E5]",
            "[1e400]",
            "[01]",
            "[+1]",
            "[.5]",
            r#"["\/"]"#,
            r#"["\u0041"]"#,
            r#"["\u000a"]"#,
            r#"["\u00E9"]"#,
            r#"["\ud83d\udca1"]"#,
            r#"{"a":1,"a":2}"#,
            r#"{"b":1,"1":2}"#,
            r#"{"2":1,"1":2}"#,
            r#"{"1":1,"1":2}"#,
            "[\"\t\"]",
            "[NaN]",
            "{\"a\" :1}",
            "[1 ]",
            "[\"x]",
            "{\"a\"}",
            "[]]",
            "{\"a\":1}}",
            r#"{"4294967295":1,"4294967294":2}"#,
        ] {
            assert!(!json_ok(text), "{text}");
        }
        let too_deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        assert!(!json_ok(&too_deep));
        assert!(check_json(b"[\"\xff\"]").is_err());
    }

    #[test]
    fn scalar_values() {
        let ok = |tag, v: &[u8]| check_value(tag, v).is_ok();
        assert!(
            ok(ValueTag::BigInt, b"0")
                && ok(ValueTag::BigInt, b"-12")
                && ok(ValueTag::BigInt, b"10")
        );
        for bad in [&b""[..], b"-0", b"+1", b"01", b"-", b"1a", b" 1"] {
            assert!(!ok(ValueTag::BigInt, bad), "{bad:?}");
        }
        assert!(ok(ValueTag::Number, &CANONICAL_NAN));
        assert!(!ok(ValueTag::Number, &[0x7f, 0xf8, 0, 0, 0, 0, 0, 1]));
        assert!(!ok(ValueTag::Number, &[0xff, 0xf8, 0, 0, 0, 0, 0, 0]));
        assert!(ok(ValueTag::Number, &(-0.0f64).to_be_bytes()));
        assert!(ok(ValueTag::Date, &8.64e15f64.to_be_bytes()));
        for bad in [1.5, -0.0, 8.64e15 + 1.0, f64::INFINITY, f64::NAN] {
            assert!(!ok(ValueTag::Date, &bad.to_be_bytes()), "{bad}");
        }
        assert!(
            ok(ValueTag::Boolean, &[1])
                && !ok(ValueTag::Boolean, &[2])
                && !ok(ValueTag::Boolean, &[])
        );
        assert!(!ok(ValueTag::String, b"\xed\xa0\x80") && !ok(ValueTag::String, b"\xc0\x80"));
        assert!(check_plaintext(&[7]).is_err() && check_plaintext(&[]).is_err());
    }
}
