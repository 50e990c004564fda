//! Gateway signatures for deployments where more than the chat gateway can write to the
//! inbound topic: the gateway signs who is writing with a key Parley shares, and Parley
//! believes a `customer_id` only when the signature verifies.
//!
//! The signed text is `conversation_id`, `customer_id` (empty when absent) and `message_id`
//! joined by a line feed; ids cannot contain control characters (decoding refuses them), so
//! the joining is unambiguous. The header value is the HMAC-SHA256 in lower-case hex.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{DecodeError, ErrorKind, InboundMessage};

type HmacSha256 = Hmac<Sha256>;

fn mac(
    key: &[u8],
    conversation_id: &str,
    customer_id: Option<&str>,
    message_id: &str,
) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(conversation_id.as_bytes());
    mac.update(b"\n");
    mac.update(customer_id.unwrap_or("").as_bytes());
    mac.update(b"\n");
    mac.update(message_id.as_bytes());
    mac
}

/// The `parley.signature` header value a gateway sends with a message.
pub fn sign(
    key: &[u8],
    conversation_id: &str,
    customer_id: Option<&str>,
    message_id: &str,
) -> String {
    hex::encode(
        mac(key, conversation_id, customer_id, message_id)
            .finalize()
            .into_bytes(),
    )
}

/// Checks a message's signature header (constant-time comparison).
pub fn verify(
    key: &[u8],
    message: &InboundMessage,
    header: Option<&[u8]>,
) -> Result<(), DecodeError> {
    let bad = |why: &str| DecodeError::new(ErrorKind::BadSignature, why);
    let header = header.ok_or_else(|| {
        bad("the parley.signature header is missing (identity mode is \"signed\")")
    })?;
    let text =
        std::str::from_utf8(header).map_err(|_| bad("the parley.signature header is not hex"))?;
    let given =
        hex::decode(text.trim()).map_err(|_| bad("the parley.signature header is not hex"))?;
    mac(
        key,
        &message.conversation_id,
        message.customer_id.as_deref(),
        &message.message_id,
    )
    .verify_slice(&given)
    .map_err(|_| bad("the parley.signature header does not verify for this conversation, customer and message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(customer: Option<&str>) -> InboundMessage {
        InboundMessage {
            message_id: "m-1".into(),
            conversation_id: "c-1".into(),
            text: "hi".into(),
            customer_id: customer.map(str::to_string),
            channel: None,
            sent_at: None,
            locale: None,
        }
    }

    #[test]
    fn a_signature_binds_conversation_customer_and_message() {
        let key = b"gateway key";
        let sig = sign(key, "c-1", Some("cust-1"), "m-1");
        assert_eq!(sig.len(), 64);
        verify(key, &message(Some("cust-1")), Some(sig.as_bytes())).unwrap();
        // Another customer, another key, no header, garbage: all refused.
        for (m, k, h) in [
            (message(Some("cust-2")), &key[..], Some(sig.as_bytes())),
            (message(None), &key[..], Some(sig.as_bytes())),
            (
                message(Some("cust-1")),
                &b"other key"[..],
                Some(sig.as_bytes()),
            ),
            (message(Some("cust-1")), &key[..], None),
            (message(Some("cust-1")), &key[..], Some(&b"zz"[..])),
            (
                message(Some("cust-1")),
                &key[..],
                Some(&sig.as_bytes()[..10]),
            ),
        ] {
            assert_eq!(verify(k, &m, h).unwrap_err().kind, ErrorKind::BadSignature);
        }
        // Anonymous messages are signed with an empty customer id.
        let anon = sign(key, "c-1", None, "m-1");
        verify(key, &message(None), Some(anon.as_bytes())).unwrap();
    }

    #[test]
    fn known_vector() {
        // printf 'c-1\ncust-1\nm-1' | openssl dgst -sha256 -hmac 'gateway key'
        assert_eq!(sign(b"gateway key", "c-1", Some("cust-1"), "m-1"), KNOWN);
    }

    const KNOWN: &str = "0ff3695f89e34642548362ead29969c5a6d955c12659f6725a9b5a33b6664be6";
}
