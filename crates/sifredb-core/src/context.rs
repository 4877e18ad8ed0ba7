//! Canonical context encoding (docs/FORMAT.md), the part of the AAD and of the HKDF info that binds
//! a value to its tenant, table, column and context version.

use crate::error::{Error, Result};

/// First byte of a canonical context.
pub const CONTEXT_ENCODING_V1: u8 = 0x01;

/// Longest tenant, table or column name, in UTF-8 bytes (as lib/context.ts enforces).
pub const MAX_NAME_LEN: usize = 255;

/// Longest encoded context: version byte, three length-prefixed names, u32 context version.
pub const MAX_CONTEXT_LEN: usize = 1 + 3 * (2 + MAX_NAME_LEN) + 4;

/// Encodes `(tenant, table, column, version)` as a canonical context.
///
/// `tenant` is `None` for single-tenant data; an empty tenant string is rejected so that it cannot
/// be confused with `None`. Names are 1..=255 UTF-8 bytes, `version` is `1..=u32::MAX`.
pub fn encode_context(
    tenant: Option<&str>,
    table: &str,
    column: &str,
    version: u32,
) -> Result<Vec<u8>> {
    let tenant = match tenant {
        Some(t) => check_name("tenant", t.as_bytes())?,
        None => &[],
    };
    let table = check_name("table", table.as_bytes())?;
    let column = check_name("column", column.as_bytes())?;
    if version == 0 {
        return Err(Error::len("context version", "1..=4294967295", 0));
    }
    let mut out = Vec::with_capacity(MAX_CONTEXT_LEN);
    out.push(CONTEXT_ENCODING_V1);
    for field in [tenant, table, column] {
        // `check_name` bounded every field to 255 bytes.
        let len = u16::try_from(field.len())
            .map_err(|_| Error::len("name", "1..=255 bytes", field.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&version.to_be_bytes());
    Ok(out)
}

/// Checks that `context` is a canonical v1 context, so that a malformed one (a binding bug) fails
/// loudly instead of silently deriving keys nobody else can derive.
pub fn validate_context(context: &[u8]) -> Result<()> {
    const MALFORMED: Error = Error::Invalid {
        arg: "context",
        reason: "is not a canonical v1 context",
    };
    if context.is_empty() || context.len() > MAX_CONTEXT_LEN {
        return Err(Error::len("context", "1..=776 bytes", context.len()));
    }
    let Some((&CONTEXT_ENCODING_V1, mut rest)) = context.split_first() else {
        return Err(MALFORMED);
    };
    for (i, name) in ["tenant", "table", "column"].into_iter().enumerate() {
        let (&len, tail) = rest.split_first_chunk::<2>().ok_or(MALFORMED)?;
        let (field, tail) = tail
            .split_at_checked(usize::from(u16::from_be_bytes(len)))
            .ok_or(MALFORMED)?;
        // Only the tenant (i == 0) may be absent.
        let len_ok = field.len() <= MAX_NAME_LEN && (i == 0 || !field.is_empty());
        if !len_ok || core::str::from_utf8(field).is_err() {
            return Err(Error::Invalid {
                arg: name,
                reason: "is not valid in the context",
            });
        }
        rest = tail;
    }
    match rest {
        [0, 0, 0, 0] => Err(Error::len("context version", "1..=4294967295", 0)),
        [_, _, _, _] => Ok(()),
        _ => Err(MALFORMED),
    }
}

fn check_name<'a>(arg: &'static str, name: &'a [u8]) -> Result<&'a [u8]> {
    if (1..=MAX_NAME_LEN).contains(&name.len()) {
        Ok(name)
    } else {
        Err(Error::len(arg, "1..=255 bytes of UTF-8", name.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_injective_and_valid() {
        let a = encode_context(None, "a|b", "c", 1).unwrap();
        let b = encode_context(None, "a", "b|c", 1).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            hex::encode(&a),
            "0100000003617c62000163".to_owned() + "00000001"
        );
        validate_context(&a).unwrap();
        let t = encode_context(Some("acme"), "users", "email", 2).unwrap();
        validate_context(&t).unwrap();
        assert_eq!(&t[..7], &[1, 0, 4, b'a', b'c', b'm', b'e']);
    }

    #[test]
    fn rejections() {
        assert!(encode_context(Some(""), "t", "c", 1).is_err());
        assert!(encode_context(None, "", "c", 1).is_err());
        assert!(encode_context(None, "t", &"x".repeat(256), 1).is_err());
        assert!(encode_context(Some(&"x".repeat(256)), "t", "c", 1).is_err());
        assert!(encode_context(None, "t", "c", 0).is_err());
        let longest = encode_context(
            Some(&"x".repeat(255)),
            &"y".repeat(255),
            &"z".repeat(255),
            7,
        )
        .unwrap();
        assert_eq!(longest.len(), MAX_CONTEXT_LEN);
        validate_context(&longest).unwrap();
        let ok = encode_context(Some("acme"), "t", "c", 1).unwrap();
        assert!(validate_context(&[]).is_err());
        assert!(validate_context(&ok[..ok.len() - 1]).is_err());
        let mut extra = ok.clone();
        extra.push(0);
        assert!(validate_context(&extra).is_err());
        let mut bad_version = ok.clone();
        bad_version[0] = 2;
        assert!(validate_context(&bad_version).is_err());
        let empty_table = [1u8, 0, 0, 0, 0, 0, 1, b'c', 0, 0, 0, 1];
        assert!(validate_context(&empty_table).is_err());
        let zero_version = [1u8, 0, 0, 0, 1, b't', 0, 1, b'c', 0, 0, 0, 0];
        assert!(validate_context(&zero_version).is_err());
        let not_utf8 = [1u8, 0, 0, 0, 1, 0xff, 0, 1, b'c', 0, 0, 0, 1];
        assert!(validate_context(&not_utf8).is_err());
        for cut in 0..ok.len() {
            assert!(validate_context(&ok[..cut]).is_err());
        }
    }
}
