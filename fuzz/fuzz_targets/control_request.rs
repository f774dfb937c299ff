//! Fuzz target `control_request`: the control socket's requests (`contract::Request`, one
//! JSON object per line, as the daemon's `control` module reads them) and the console
//! editor's request (`contract::ConfigEditRequest`, `POST /v1/config/edit`). Nothing may
//! panic, and every request that decodes encodes to JSON that decodes to the same
//! request.

#![no_main]

use libfuzzer_sys::fuzz_target;

fn round_trip<T>(bytes: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        let text = serde_json::to_string(&value).expect("a decoded request encodes");
        assert!(!text.contains('\n'), "a request must stay one line: {text}");
        let again: T = serde_json::from_str(&text).expect("an encoded request decodes");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    // The socket reads lines: each line is one request.
    for line in data.split(|&b| b == b'\n') {
        round_trip::<contract::Request>(line);
    }
    round_trip::<contract::ConfigEditRequest>(data);
});
