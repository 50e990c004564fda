//! Value encoding: one version byte, then JSON. JSON keeps the store readable with
//! `ldb` when something goes wrong, and its size is small next to RocksDB's own overhead.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StateError;
use crate::dialogue::{Conversation, CONVERSATION_VERSION};

/// Version of every value that is not a conversation.
const VALUE_VERSION: u8 = 1;

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    // Serialising these plain data types cannot fail.
    serde_json::to_writer(&mut out, value).expect("state value serialises");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StateError> {
    match bytes.split_first() {
        Some((&VALUE_VERSION, rest)) => {
            serde_json::from_slice(rest).map_err(|e| StateError::Corrupt {
                what: what.to_string(),
                message: e.to_string(),
            })
        }
        Some((&v, _)) if v > VALUE_VERSION => Err(StateError::TooNew {
            what: what.to_string(),
            version: v,
        }),
        _ => Err(StateError::Corrupt {
            what: what.to_string(),
            message: "no version byte".into(),
        }),
    }
}

pub fn encode_conversation(c: &Conversation) -> Vec<u8> {
    let mut out = vec![CONVERSATION_VERSION];
    serde_json::to_writer(&mut out, c).expect("conversation serialises");
    out
}

/// Reads a conversation of any version this release knows, migrating older ones.
pub fn decode_conversation(bytes: &[u8], id: &str) -> Result<Conversation, StateError> {
    let what = format!("conversation {id}");
    match bytes.split_first() {
        Some((&CONVERSATION_VERSION, rest)) => {
            serde_json::from_slice(rest).map_err(|e| StateError::Corrupt {
                what,
                message: e.to_string(),
            })
        }
        // Versions older than the current one would be migrated here, one step at a time.
        Some((&v, _)) if v > CONVERSATION_VERSION => Err(StateError::TooNew { what, version: v }),
        _ => Err(StateError::Corrupt {
            what,
            message: "unknown format version".into(),
        }),
    }
}
