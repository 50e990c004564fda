use super::*;
use crate::wire::OrderStatus;

fn order(id: &str, customer: &str, status: OrderStatus) -> Order {
    serde_json::from_value(serde_json::json!({
        "order_id": id, "customer_id": customer, "status": status
    }))
    .unwrap()
}

#[test]
fn writes_are_atomic_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut b = store.batch();
        let c = Conversation {
            failures: 1,
            ..Default::default()
        };
        b.put_conversation("c1", &c);
        b.put_offset("chat.inbound", 2, 41);
        let rec = OutRecord {
            topic: "chat.replies".into(),
            key: Some(b"c1".to_vec()),
            value: b"{}".to_vec(),
            headers: vec![],
        };
        b.put_outbox("chat.inbound", 2, 40, std::slice::from_ref(&rec));
        store.write(b).unwrap();
        assert_eq!(
            store.outbox("chat.inbound", 2, 40).unwrap().unwrap(),
            vec![rec]
        );
        store.prune_outbox("chat.inbound", 2, 41).unwrap();
        assert!(store.outbox("chat.inbound", 2, 40).unwrap().is_none());
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.conversation("c1").unwrap().unwrap().failures, 1);
    assert_eq!(store.applied_offset("chat.inbound", 2).unwrap(), Some(41));
    assert_eq!(store.applied_offset("chat.inbound", 3).unwrap(), None);
}

#[test]
fn the_customer_index_follows_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = order("A-1", "u1", OrderStatus::Processing);
    let mut b = store.batch();
    b.put_order(&a, None);
    b.put_order(&order("A-2", "u1", OrderStatus::Delivered), None);
    store.write(b).unwrap();
    assert_eq!(store.orders_of("u1").unwrap().len(), 2);
    assert_eq!(store.open_orders_of("u1").len(), 1);
    let moved = order("A-1", "u2", OrderStatus::Shipped);
    let mut b = store.batch();
    b.put_order(&moved, Some(&a));
    store.write(b).unwrap();
    assert_eq!(store.orders_of("u1").unwrap().len(), 1);
    assert_eq!(
        store.orders_of("u2").unwrap()[0].status,
        OrderStatus::Shipped
    );
    let mut b = store.batch();
    b.delete_order("A-1", Some(&moved));
    store.write(b).unwrap();
    assert!(store.orders_of("u2").unwrap().is_empty());
    assert!(store.order("A-1").unwrap().is_none());
    // "u1" must not match "u10"'s orders through the prefix.
    let mut b = store.batch();
    b.put_order(&order("B-1", "u10", OrderStatus::Placed), None);
    store.write(b).unwrap();
    assert_eq!(store.orders_of("u1").unwrap().len(), 1);
}

#[test]
fn values_from_a_newer_release_are_refused_clearly() {
    let e = decode::<Order>(&[9, b'{', b'}'], "order X").unwrap_err();
    assert!(e.to_string().contains("newer Parley"), "{e}");
    let e = codec::decode_conversation(&[0], "c").unwrap_err();
    assert!(e.to_string().contains("conversation c"), "{e}");
}
