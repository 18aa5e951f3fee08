//! wasm-bindgen face of shadow-core (built in the browser-page issue).
