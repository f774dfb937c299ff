//! Fuzz target `api_bodies`: the JSON bodies the daemon's HTTPS API accepts
//! (`daemon::api::routes`: switchover, maintenance, application heartbeat, clear,
//! configuration check and push; `daemon::configstore`: the node-to-node prepare,
//! commit and newest-generation calls of a push), and the store's generation metadata
//! files (`NNNNNN.json`, read back from disk). Nothing may panic; the types that have
//! an encoder re-encode to JSON that decodes to the same value.

#![no_main]

use daemon::api::routes::{
    ClearBody, ConfigCheckBody, ConfigPushBody, HeartbeatBody, MaintenanceBody, SwitchoverBody,
};
use daemon::configstore::sync::NewestBody;
use daemon::configstore::{CommitBody, Meta, PrepareBody};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn decodes<T: DeserializeOwned>(bytes: &[u8]) {
    let _ = serde_json::from_slice::<T>(bytes);
}

/// Decodes `bytes` as `T`; if they are one, its JSON decodes to a value whose JSON is
/// the same.
fn round_trip<T: DeserializeOwned + Serialize>(bytes: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        let json = serde_json::to_value(&value).expect("a decoded body encodes");
        let again: T = serde_json::from_value(json.clone()).expect("an encoded body decodes");
        assert_eq!(serde_json::to_value(&again).expect("encodes"), json);
    }
}

fuzz_target!(|data: &[u8]| {
    decodes::<SwitchoverBody>(data);
    decodes::<MaintenanceBody>(data);
    decodes::<HeartbeatBody>(data);
    decodes::<ClearBody>(data);
    decodes::<ConfigCheckBody>(data);
    decodes::<ConfigPushBody>(data);
    round_trip::<PrepareBody>(data);
    round_trip::<CommitBody>(data);
    round_trip::<NewestBody>(data);
    round_trip::<Meta>(data);
});
