use napi::bindgen_prelude::Error;

/// The JS `Error.code` is the type parameter of `napi::Error`; SifreDB's codes are static strings.
pub type Code = &'static str;

/// Results of the binding; `#[napi]` signatures spell it `Result<T, Code>` so the macro recognises it.
pub type JsResult<T> = napi::Result<T, Code>;

/// Maps a core error to a JS error carrying its stable `code`. Core messages never hold secrets.
pub fn to_js(error: sifredb_core::Error) -> Error<&'static str> {
    Error::new(error.code(), error.to_string())
}

/// An argument the core never sees because the binding rejects it first.
pub fn input_error(message: impl Into<String>) -> Error<&'static str> {
    Error::new("ERR_SIFREDB_INPUT", message.into())
}
