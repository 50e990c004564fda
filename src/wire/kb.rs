//! The knowledge the shop publishes: help articles (`kb.articles`) and its catalogue
//! (`commerce.products`). Both are compacted topics keyed by id; a tombstone deletes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::decode::{object, required_str, type_name};
use super::{DecodeError, ErrorKind};

/// A help-centre article. `body` is the shop's own answer text: replies quote it, never
/// paraphrase it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub amount: f64,
    pub currency: String,
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:.2}", self.currency, self.amount)
    }
}

/// A product of the catalogue, as live as its last record: price and stock change by the
/// minute. Attribute values are free-form JSON, as shops store them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub sku: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub price: Price,
    pub stock: u64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What a bot reply was answered from (`source` on `chat.replies`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub kind: SourceKind,
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Article,
    Product,
}

/// The longest id or SKU accepted: it is a RocksDB key and a reply's `source.id`.
const MAX_ID_BYTES: usize = 200;

fn non_empty(map: &Map<String, Value>, field: &str) -> Result<String, DecodeError> {
    let s = required_str(map, field)?;
    if s.trim().is_empty() {
        return Err(DecodeError::new(
            ErrorKind::InvalidValue,
            format!("field `{field}` is empty"),
        ));
    }
    Ok(s)
}

fn check_id(field: &str, id: &str, key: Option<&str>) -> Result<(), DecodeError> {
    if id.len() > MAX_ID_BYTES {
        return Err(DecodeError::new(
            ErrorKind::IdTooLong,
            format!("field `{field}` is {} bytes, over {MAX_ID_BYTES}", id.len()),
        ));
    }
    match key {
        Some(k) if k != id => Err(DecodeError::new(
            ErrorKind::KeyMismatch,
            format!("record key {k:?} is not the {field} {id:?}"),
        )),
        _ => Ok(()),
    }
}

/// Decodes a `kb.articles` value whose record key is `key`.
pub fn decode_article(bytes: &[u8], key: Option<&str>) -> Result<Article, DecodeError> {
    let map = object(Some(bytes), "article")?;
    let id = non_empty(&map, "id")?;
    check_id("id", &id, key)?;
    non_empty(&map, "title")?;
    non_empty(&map, "body")?;
    serde_json::from_value(Value::Object(map))
        .map_err(|e| DecodeError::new(ErrorKind::InvalidValue, format!("article: {e}")))
}

/// Decodes a `commerce.products` value whose record key is `key`.
pub fn decode_product(bytes: &[u8], key: Option<&str>) -> Result<Product, DecodeError> {
    let map = object(Some(bytes), "product")?;
    let sku = non_empty(&map, "sku")?;
    check_id("sku", &sku, key)?;
    non_empty(&map, "name")?;
    let price = match map.get("price") {
        None | Some(Value::Null) => {
            return Err(DecodeError::new(
                ErrorKind::MissingField,
                "required field `price` is missing",
            ))
        }
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Err(DecodeError::new(
                ErrorKind::WrongType,
                format!("field `price` must be an object, got {}", type_name(other)),
            ))
        }
    };
    match price.get("amount") {
        Some(Value::Number(n)) if n.as_f64().is_some_and(|a| a >= 0.0 && a.is_finite()) => {}
        Some(Value::Number(_)) => {
            return Err(DecodeError::new(
                ErrorKind::InvalidValue,
                "field `price.amount` must not be negative",
            ))
        }
        None => {
            return Err(DecodeError::new(
                ErrorKind::MissingField,
                "required field `price.amount` is missing",
            ))
        }
        Some(other) => {
            return Err(DecodeError::new(
                ErrorKind::WrongType,
                format!(
                    "field `price.amount` must be a number, got {}",
                    type_name(other)
                ),
            ))
        }
    }
    let currency = required_str(price, "currency").map_err(|e| {
        DecodeError::new(e.kind, e.message.replace("`currency`", "`price.currency`"))
    })?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(DecodeError::new(
            ErrorKind::InvalidValue,
            format!(
                "field `price.currency` must be an ISO 4217 code like \"EUR\", got {currency:?}"
            ),
        ));
    }
    match map.get("stock") {
        Some(Value::Number(n)) if n.as_u64().is_some() => {}
        Some(Value::Number(n)) => {
            return Err(DecodeError::new(
                ErrorKind::InvalidValue,
                format!("field `stock` must be a whole number of units, not negative, got {n}"),
            ))
        }
        None | Some(Value::Null) => {
            return Err(DecodeError::new(
                ErrorKind::MissingField,
                "required field `stock` is missing",
            ))
        }
        Some(other) => {
            return Err(DecodeError::new(
                ErrorKind::WrongType,
                format!("field `stock` must be an integer, got {}", type_name(other)),
            ))
        }
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| DecodeError::new(ErrorKind::InvalidValue, format!("product: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(v: Value) -> Result<Product, DecodeError> {
        decode_product(v.to_string().as_bytes(), Some("NW-1"))
    }

    fn ok_product() -> Value {
        serde_json::json!({"sku": "NW-1", "name": "Kettle Pro", "price": {"amount": 59.9, "currency": "EUR"},
            "stock": 3, "attributes": {"capacity_l": 1.7, "colors": ["black"], "cordless": true}})
    }

    #[test]
    fn a_product_keeps_free_form_attributes() {
        let p = product(ok_product()).unwrap();
        assert_eq!(p.attributes["capacity_l"], serde_json::json!(1.7));
        assert_eq!(p.price.to_string(), "EUR 59.90");
    }

    #[test]
    fn bad_products_are_named_precisely() {
        let cases = [
            (
                "stock",
                serde_json::json!(-1),
                ErrorKind::InvalidValue,
                "stock",
            ),
            (
                "stock",
                serde_json::json!(2.5),
                ErrorKind::InvalidValue,
                "stock",
            ),
            (
                "stock",
                serde_json::json!("3"),
                ErrorKind::WrongType,
                "stock",
            ),
            ("price", serde_json::json!(5), ErrorKind::WrongType, "price"),
            (
                "price",
                serde_json::json!({"amount": 1, "currency": "euro"}),
                ErrorKind::InvalidValue,
                "price.currency",
            ),
            (
                "price",
                serde_json::json!({"amount": -1, "currency": "EUR"}),
                ErrorKind::InvalidValue,
                "price.amount",
            ),
            (
                "name",
                serde_json::json!(" "),
                ErrorKind::InvalidValue,
                "name",
            ),
        ];
        for (field, value, kind, named) in cases {
            let mut v = ok_product();
            v[field] = value;
            let e = product(v).unwrap_err();
            assert_eq!(e.kind, kind, "{field}: {e}");
            assert!(e.message.contains(named), "{e}");
        }
        let mut v = ok_product();
        v["sku"] = "NW-2".into();
        assert_eq!(product(v).unwrap_err().kind, ErrorKind::KeyMismatch);
    }

    #[test]
    fn an_article_needs_id_title_and_body() {
        let ok = serde_json::json!({"id": "a", "title": "T", "body": "B", "extra": 1});
        assert!(decode_article(ok.to_string().as_bytes(), Some("a")).is_ok());
        for field in ["id", "title", "body"] {
            let mut v = ok.clone();
            v.as_object_mut().unwrap().remove(field);
            let e = decode_article(v.to_string().as_bytes(), None).unwrap_err();
            assert_eq!(e.kind, ErrorKind::MissingField, "{e}");
        }
        let e = decode_article(b"[1]", Some("a")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::WrongType);
    }
}
